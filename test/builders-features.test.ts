import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBuildRunner } from '../src/builders/index.js';
import type { BuildRecord } from '../src/store/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { BASE, REGISTRY, buildRecord, deleteRegistryRepo, makeRepo } from '../dev/builders.js';
import { leftovers, memoryLog, registryLabels } from './support/builders.js';

/**
 * The BuildKit features real Dockerfiles use, through real dedicated slipway builds: multi-stage
 * builds with a rule's `target`, ARG from build_args, and `RUN --mount=type=cache` kept per
 * repository across engines with `cache: true` (and never seen by another repository).
 */

const docker = new Docker();
const run = Date.now().toString(36);
const IMAGE = `${REGISTRY}/slipway-test/features-${run}`;
let redisServer: TestRedis;
let redis: Redis;
let dataDir: string;
let runner: DockerBuildRunner;
const dirs: string[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  dataDir = await mkdtemp(path.join(tmpdir(), 'slw-feat-'));
  runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' } });
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
  await deleteRegistryRepo(IMAGE);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

async function build(files: Record<string, string>, over: Partial<BuildRecord> & { dir?: string } = {}) {
  const { dir: existing, ...record } = over;
  const { dir, sha } = await makeRepo(files, existing);
  if (!existing) dirs.push(dir);
  const log = memoryLog();
  const b = buildRecord({ repo: 'acme/features', sha, image: IMAGE, tags: [`t-${sha.slice(0, 7)}`], cloneUrl: `file://${dir}`, ...record });
  const out = await runner.run(b, { signal: new AbortController().signal, log });
  return { dir, digest: out.digest, log: log.text() };
}

/** The output lines of RUN steps, without BuildKit's `#n ` prefix. */
const output = (log: string) => log.split('\n').map((l) => /^#\d+ (.*)$/.exec(l)?.[1] ?? '');

describe('multi-stage builds', () => {
  const files = {
    Dockerfile: [
      `FROM ${BASE} AS build`,
      'ARG FLAVOUR=plain',
      'RUN echo "built $FLAVOUR" > /artifact',
      `FROM ${BASE} AS test`,
      'COPY --from=build /artifact /artifact',
      'RUN echo "testing: $(cat /artifact)"',
      'LABEL stage=test',
      `FROM ${BASE} AS runtime`,
      'COPY --from=build /artifact /artifact',
      'RUN echo "runtime: $(cat /artifact)"',
      'LABEL stage=runtime',
      '',
    ].join('\n'),
  };

  it('builds the stage a rule names as its target, with ARG values from build_args', { timeout: 120_000 }, async () => {
    const test = await build(files, { target: 'test', build_args: { FLAVOUR: 'spicy' } });
    expect((await registryLabels(IMAGE, test.digest)).stage).toBe('test');
    expect(output(test.log)).toContain('testing: built spicy');
    expect(output(test.log).some((l) => l.startsWith('runtime:'))).toBe(false);

    const last = await build({ ...files, 'NOTES.txt': 'second commit\n' }, { dir: test.dir });
    expect((await registryLabels(IMAGE, last.digest)).stage).toBe('runtime');
    expect(output(last.log)).toContain('runtime: built plain');
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('an unknown target fails the build naming it', { timeout: 60_000 }, async () => {
    const err = await build(files, { target: 'nosuchstage' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/nosuchstage/);
  });
});

describe('a repository\'s engine kept for its next build (SLIPWAY_BUILDER_KEEP)', () => {
  it('serves the same repository\'s next cached build, never another repository or an uncached build, and stops on close', { timeout: 180_000 }, async () => {
    const keeping = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' }, keepEngineMs: 60_000 });
    const once = async (repo: string, cache: boolean, files: Record<string, string>, dir?: string) => {
      const { dir: d, sha } = await makeRepo(files, dir);
      if (!dir) dirs.push(d);
      const log = memoryLog();
      const b = buildRecord({ repo, sha, image: IMAGE, tags: [`k-${sha.slice(0, 7)}`], cloneUrl: `file://${d}`, cache });
      await keeping.run(b, { signal: new AbortController().signal, log });
      return { dir: d, id: b.id, log: log.text() };
    };
    try {
      // The first build's RUN step is refused by the egress policy; the second's is not.
      const first = await once('acme/kept', true, { Dockerfile: `FROM ${BASE}\nRUN nc -w 3 10.0.0.1 80 </dev/null || echo refused\n` });
      expect(first.log).toMatch(/engine ready in \d+ ms \(repository cache\)/);
      expect(first.log).toMatch(/egress policy public refused connections to private range 10\.0\.0\.0\/8/);
      const slots = (await leftovers(dataDir)).filter((l) => l.startsWith('dir x/'));
      expect(slots).toHaveLength(1);

      const second = await once('acme/kept', true, { Dockerfile: `FROM ${BASE}\nRUN echo second\n` }, first.dir);
      expect(second.log).toContain(`engine: this repository's engine, kept since build ${first.id}`);
      expect(second.log).not.toMatch(/engine ready in/);
      // Refusals are counted per build, not since the engine started.
      expect(second.log).not.toMatch(/egress policy public refused/);

      const other = await once('acme/other-kept', true, { Dockerfile: `FROM ${BASE}\nRUN echo other\n` });
      expect(other.log).toMatch(/engine ready in/);
      const uncached = await once('acme/kept', false, { Dockerfile: `FROM ${BASE}\nRUN echo uncached\n` }, first.dir);
      expect(uncached.log).toMatch(/engine ready in \d+ ms \(fresh data root\)/);
      // Two repositories' engines wait; the uncached one stopped with its build.
      expect((await leftovers(dataDir)).filter((l) => l.startsWith('dir x/'))).toHaveLength(2);
    } finally {
      await keeping.close();
    }
    expect(await leftovers(dataDir)).toEqual([]);
  });
});

describe('RUN --mount=type=cache', () => {
  // Each build adds one file to the cache mount and prints what the mount held before.
  const step = (n: number) => ({
    Dockerfile: [`FROM ${BASE}`, `COPY round /round`, 'RUN --mount=type=cache,target=/cache echo "cache had: $(ls /cache | tr "\\n" " ")" && cp /round /cache/round-$(cat /round)', ''].join('\n'),
    round: `${n}\n`,
  });
  const seen = (log: string) => output(log).find((l) => l.startsWith('cache had:'))!.slice('cache had:'.length).trim();

  it('keeps the cache mount of a repository across dedicated engines with cache: true, and never shows it to another', { timeout: 180_000 }, async () => {
    const first = await build(step(1), { repo: 'acme/cache-a', cache: true });
    expect(seen(first.log)).toBe('');
    const second = await build(step(2), { repo: 'acme/cache-a', cache: true, dir: first.dir });
    expect(seen(second.log)).toBe('round-1');
    const other = await build(step(3), { repo: 'acme/cache-b', cache: true });
    expect(seen(other.log)).toBe('');
    const uncached = await build(step(4), { repo: 'acme/cache-a', cache: false, dir: first.dir });
    expect(seen(uncached.log)).toBe('');
    expect(await leftovers(dataDir)).toEqual([]);
  });
});
