import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBuildRunner } from '../src/builders/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { BASE, REGISTRY, buildRecord, deleteRegistryRepo, makeRepo } from '../dev/builders.js';
import { leftovers, memoryLog } from './support/builders.js';

/**
 * SLIPWAY_BASE_IMAGES: a worker pulls its base images once into a seed; a repository's first build
 * (a new cache data root) and a build without cache start with them linked in, and BuildKit's FROM
 * finds them locally instead of pulling them into an empty data root.
 */

const exec = promisify(execFile);
const docker = new Docker();
const run = Date.now().toString(36);
const IMAGE = `${REGISTRY}/slipway-test/seed-${run}`;
let redisServer: TestRedis;
let redis: Redis;
let dataDir: string;
const dirs: string[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  dataDir = await mkdtemp(path.join(tmpdir(), 'slw-seed-'));
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
  await deleteRegistryRepo(IMAGE);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

async function build(runner: DockerBuildRunner, repo: string, cache: boolean, base = BASE) {
  const { dir, sha } = await makeRepo({ Dockerfile: `FROM ${base}\nRUN echo "built on the base" > /built\n` });
  dirs.push(dir);
  const log = memoryLog();
  await runner.run(buildRecord({ repo, sha, image: IMAGE, tags: [`t-${sha.slice(0, 7)}`], cloneUrl: `file://${dir}`, cache }), { signal: new AbortController().signal, log });
  return log.text();
}

/** A copy of the test base image under a name of its own in the registry, so the test can take it away. */
async function ownBase(name: string): Promise<string> {
  const ref = `${REGISTRY}/slipway-test/${name}-${run}:1`;
  await exec('/usr/bin/docker', ['tag', BASE, ref]);
  await exec('/usr/bin/docker', ['push', '-q', ref]);
  await exec('/usr/bin/docker', ['rmi', ref]);
  return ref;
}

describe('base images seeded for new data roots', () => {
  it('a new data root finds its base image linked in from the seed, even once the registry no longer has it', { timeout: 180_000 }, async () => {
    const base = await ownBase('seed-base');
    const runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' }, baseImages: [base] });
    // Until the first seed is ready, builds go on as without one (pulling).
    expect(await build(runner, `acme/early-${run}`, false, base)).not.toMatch(/starts with the worker's/);
    const seeded = await runner.prepareBaseImages();
    expect(seeded?.version).toMatch(/^v[0-9a-z]+$/);
    // Gone from the registry: a build can only find it in its own data root now.
    await deleteRegistryRepo(base.replace(/:1$/, ''));
    for (const [repo, cache] of [[`acme/first-${run}`, true], [`acme/nocache-${run}`, false]] as const) {
      const log = await build(runner, repo, cache, base);
      expect(log).toMatch(/base images: this data root starts with the worker's \(SLIPWAY_BASE_IMAGES\), linked in \d+ ms/);
      expect(log).toContain('built on the base');
    }
    // A repository cache that has its images is left as it is.
    expect(await build(runner, `acme/first-${run}`, true, base)).not.toMatch(/starts with the worker's/);
    await runner.close();
    // Without the seed, the same build on a new data root has to pull, and now cannot.
    const plain = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' } });
    await expect(build(plain, `acme/unseeded-${run}`, false, base)).rejects.toThrow(/not found|manifest unknown/);
    await plain.close();
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('a refresh makes a new seed current and keeps one version before it; data roots made from an old one still work', { timeout: 180_000 }, async () => {
    const runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' }, baseImages: [BASE] });
    const versions = async () => (await readdir(path.join(dataDir, 'builders', 'seed'))).filter((v) => v.startsWith('v')).sort();
    await runner.prepareBaseImages();
    await runner.prepareBaseImages();
    const kept = await versions();
    expect(kept).toHaveLength(2);
    // The seeds the first test's data roots were linked from are gone: those data roots keep their images.
    const log = await build(runner, `acme/first-${run}`, true, `${REGISTRY}/slipway-test/seed-base-${run}:1`);
    expect(log).toContain('built on the base');
    await runner.close();
  });

  it('a base image that cannot be pulled fails the seed with its name and leaves no seed version or engine behind', { timeout: 120_000 }, async () => {
    const runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' }, baseImages: [`${REGISTRY}/slipway-test/no-such-base-${run}:1`] });
    const before = (await readdir(path.join(dataDir, 'builders', 'seed'))).sort();
    await expect(runner.prepareBaseImages()).rejects.toThrow(new RegExp(`base image ${REGISTRY}/slipway-test/no-such-base-${run}:1 could not be pulled for the seed`));
    expect((await readdir(path.join(dataDir, 'builders', 'seed'))).sort()).toEqual(before);
    expect(await leftovers(dataDir)).toEqual([]);
    await runner.close();
  });
});
