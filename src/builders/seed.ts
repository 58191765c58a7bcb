import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DedicatedEngine, DedicatedEngineOptions } from './engine.js';
import { BuildError } from './errors.js';
import { removeTree } from './host.js';
import { readJsonLines } from './progress.js';
import { parseImage, type RegistryCredentials } from './registry.js';

const exec = promisify(execFile);

/** Seed data roots live here: `<version>/` each, `current` names the one new data roots start from. */
export const seedDir = (root: string) => path.join(root, 'seed');

/** What a data root needs of a seed: the image store and its layers (not networks, containers, BuildKit state). */
const SEEDED = ['image', 'overlay2'] as const;

export interface BaseImageSeedOptions {
  /** `<data dir>/builders`. */
  root: string;
  /** SLIPWAY_BASE_IMAGES: images new data roots start with (`127.0.0.1:5000/slipway/node:20`). */
  images: readonly string[];
  /** Starts the engine that pulls them, on the data root it is given. */
  start: (opts: DedicatedEngineOptions) => Promise<DedicatedEngine>;
  /** The options the seed's engine starts with besides its data root (registries, dockerd path). */
  engine: Omit<DedicatedEngineOptions, 'root' | 'buildId' | 'repo' | 'cache' | 'dataRoot' | 'log'>;
  credentialsFor?: (registry: string) => RegistryCredentials | undefined;
  log: (line: string) => void;
}

/**
 * Base images made once per worker, not pulled by every new data root: the seed is a data root an
 * engine pulled SLIPWAY_BASE_IMAGES into and then stopped. A repository's first build (and every
 * build without cache) starts on a copy of it made of hard links (`cp -al`), so `FROM` finds the
 * image locally, as on a developer's machine, instead of pulling hundreds of MB into an empty data
 * root. Image layers are only ever read in place (overlay lower dirs), so shared links are safe: a
 * data root that drops an image unlinks its own names only. Each refresh pulls into a new version
 * and then switches `current`, so a copy never reads a seed an engine is writing.
 */
export class BaseImageSeed {
  constructor(private readonly o: BaseImageSeedOptions) {}

  /** The data root new ones copy, or null while none is ready (or no images are configured). */
  async current(): Promise<string | null> {
    if (this.o.images.length === 0) return null;
    const version = (await readFile(path.join(seedDir(this.o.root), 'current'), 'utf8').catch(() => '')).trim();
    return version && (await exists(path.join(seedDir(this.o.root), version, 'image'))) ? path.join(seedDir(this.o.root), version) : null;
  }

  /** Pulls every base image into a new seed version and makes it current; older versions but one go. */
  async refresh(): Promise<{ version: string; ms: number }> {
    const started = Date.now();
    const dir = seedDir(this.o.root);
    const version = `v${started.toString(36)}`;
    const dataRoot = path.join(dir, version);
    await mkdir(dataRoot, { recursive: true });
    const engine = await this.o.start({ ...this.o.engine, root: this.o.root, buildId: `seed-${version}`, repo: 'slipway/seed', cache: false, dataRoot, log: this.o.log });
    try {
      for (const ref of this.o.images) await this.pull(engine, ref);
    } catch (err) {
      await engine.close();
      await removeTree(dataRoot);
      throw err;
    }
    await engine.close();
    await writeFile(path.join(dir, 'current.new'), version);
    await rename(path.join(dir, 'current.new'), path.join(dir, 'current'));
    // The version before stays a while: a copy started just before the switch may still read it.
    const versions = (await readdir(dir)).filter((v) => /^v[0-9a-z]+$/.test(v)).sort();
    for (const old of versions.slice(0, -2)) await removeTree(path.join(dir, old));
    return { version, ms: Date.now() - started };
  }

  private async pull(engine: DedicatedEngine, ref: string): Promise<void> {
    const { registry } = parseImage(ref);
    const creds = this.o.credentialsFor?.(registry);
    const authconfig = creds ? { username: creds.username, password: creds.password, serveraddress: registry } : {};
    const failed = (why: string) => new BuildError('engine_failed', `base image ${ref} could not be pulled for the seed: ${why}`, true);
    const stream = (await engine.docker.pull(ref, { authconfig }).catch((err: Error) => {
      throw failed(err.message);
    })) as NodeJS.ReadableStream;
    let error: string | undefined;
    await readJsonLines(stream, (msg) => {
      const detail = msg.errorDetail as { message?: string } | undefined;
      if (detail || typeof msg.error === 'string') error = detail?.message ?? String(msg.error);
    });
    if (error) throw failed(error);
  }
}

/**
 * Makes `dataRoot` start from `seed` when it holds no image store yet (a new repository cache or a
 * fresh data root): hard links, no data copied. Answers whether it did.
 */
export async function seedDataRoot(seed: string, dataRoot: string): Promise<boolean> {
  if (await exists(path.join(dataRoot, 'image'))) return false;
  await mkdir(dataRoot, { recursive: true });
  // -a keeps owners, modes and the overlay xattrs (opaque dirs); -l links files instead of copying them.
  await exec('cp', ['-al', ...SEEDED.map((d) => path.join(seed, d)), `${dataRoot}/`]);
  return true;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
