import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBuildRunner, reap } from '../src/builders/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { BASE, REGISTRY, buildRecord, deleteRegistryRepo, makeRepo, registryDigest } from '../dev/builders.js';
import { leftovers, memoryLog, registryLabels } from './support/builders.js';

/** Dedicated engines: a dockerd per build, repository caches, isolation, cancel, a killed worker, the reaper. */

const docker = new Docker();
const run = Date.now().toString(36);
const IMAGE_A = `${REGISTRY}/slipway-test/dedicated-a-${run}`;
const IMAGE_B = `${REGISTRY}/slipway-test/dedicated-b-${run}`;
let redisServer: TestRedis;
let redis: Redis;
let dataDir: string;
let runner: DockerBuildRunner;
const cleanup: string[] = [];

const DOCKERFILE = [`FROM ${BASE}`, 'RUN echo expensive step && date > /built-at', 'COPY . /src', ''].join('\n');

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  dataDir = await mkdtemp(path.join(tmpdir(), 'slipway-dedicated-'));
  runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' } });
});

afterAll(async () => {
  await deleteRegistryRepo(IMAGE_A);
  await deleteRegistryRepo(IMAGE_B);
  redis.disconnect();
  await redisServer.stop();
  await rm(dataDir, { recursive: true, force: true });
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

const ok = () => ({ signal: new AbortController().signal, log: memoryLog() });

function hostImagesOf(buildId: string) {
  return docker.listImages({ filters: { label: [`io.slipway.build=${buildId}`] } });
}

describe('dedicated engines', () => {
  it('builds on an engine of its own, pushes, and leaves no engine, bridge, data root or host image', async () => {
    const repo = await makeRepo({ Dockerfile: DOCKERFILE, 'a.txt': 'a\n' });
    cleanup.push(repo.dir);
    const build = buildRecord({ repo: 'acme/a', sha: repo.sha, image: IMAGE_A, tags: ['one'], cloneUrl: `file://${repo.dir}` });
    const ctx = ok();
    const out = await runner.run(build, ctx);
    expect(await registryDigest(IMAGE_A, 'one')).toBe(out.digest);
    expect((await registryLabels(IMAGE_A, out.digest))['io.slipway.build']).toBe(build.id);
    expect(ctx.log.text()).toMatch(/engine ready in \d+ ms \(fresh data root\)/);
    expect(ctx.log.text()).toMatch(/RUN echo expensive step/);
    // The host engine never saw this build.
    expect(await hostImagesOf(build.id)).toEqual([]);
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('cache: true reuses a repository\'s own layers, and two repositories building at once do not share them', async () => {
    const a1 = await makeRepo({ Dockerfile: DOCKERFILE, 'a.txt': 'first\n' });
    cleanup.push(a1.dir);
    const first = ok();
    await runner.run(buildRecord({ repo: 'acme/a', sha: a1.sha, image: IMAGE_A, tags: ['c1'], cache: true, cloneUrl: `file://${a1.dir}` }), first);
    expect(first.log.text()).toMatch(/#\d+ expensive step/);

    // A second commit of A and a first build of B (same Dockerfile), on two engines at once.
    const a2 = await makeRepo({ 'a.txt': 'second\n' }, a1.dir);
    const b1 = await makeRepo({ Dockerfile: DOCKERFILE, 'b.txt': 'b\n' });
    cleanup.push(b1.dir);
    const ctxA = ok();
    const ctxB = ok();
    const [outA, outB] = await Promise.all([
      runner.run(buildRecord({ repo: 'acme/a', sha: a2.sha, image: IMAGE_A, tags: ['c2'], cache: true, cloneUrl: `file://${a1.dir}` }), ctxA),
      runner.run(buildRecord({ repo: 'acme/b', sha: b1.sha, image: IMAGE_B, tags: ['c1'], cache: true, cloneUrl: `file://${b1.dir}` }), ctxB),
    ]);
    // A reused its own layer: the RUN step is CACHED and did not run again.
    expect(ctxA.log.text()).toMatch(/==> #(\d+) \[2\/3\] RUN echo expensive step[^\n]*\n#\1 CACHED/);
    expect(ctxA.log.text()).not.toMatch(/#\d+ expensive step/);
    expect(ctxA.log.text()).toContain('(repository cache)');
    // B, with the identical step, could not see A's cache: it ran the step itself.
    expect(ctxB.log.text()).toMatch(/#\d+ expensive step/);
    expect(ctxB.log.text()).not.toMatch(/RUN echo expensive step[^\n]*\n#\d+ CACHED/);
    expect(await registryDigest(IMAGE_A, 'c2')).toBe(outA.digest);
    expect(await registryDigest(IMAGE_B, 'c1')).toBe(outB.digest);
    // Each repository keeps exactly its own cache root; nothing else remains.
    expect((await readdir(path.join(dataDir, 'builders', 'cache'))).filter((n) => !n.endsWith('.lock')).sort()).toEqual(['acme__a', 'acme__b']);
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('cancels mid-build: the engine, its build process and the workspace are gone within seconds', async () => {
    const repo = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 120\n` });
    cleanup.push(repo.dir);
    const ac = new AbortController();
    const log = memoryLog();
    const reason = new Error('cancelled by tester');
    const line = log.line;
    log.line = (t: string) => {
      line(t);
      if (t.endsWith(' started')) ac.abort(reason);
    };
    const build = buildRecord({ repo: 'acme/slow', sha: repo.sha, image: IMAGE_A, tags: ['never'], cloneUrl: `file://${repo.dir}` });
    const t0 = Date.now();
    const err = await runner.run(build, { signal: ac.signal, log }).catch((e: unknown) => e);
    expect(err).toBe(reason);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('the reaper leaves a live build alone', async () => {
    const repo = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 2\n` });
    cleanup.push(repo.dir);
    const log = memoryLog();
    let reaped: Promise<unknown> | undefined;
    const line = log.line;
    log.line = (t: string) => {
      line(t);
      if (t.endsWith(' started')) reaped = reap({ dataDir, docker });
    };
    const build = buildRecord({ repo: 'acme/live', sha: repo.sha, image: IMAGE_A, tags: ['live'], cloneUrl: `file://${repo.dir}` });
    const out = await runner.run(build, { signal: new AbortController().signal, log });
    expect(await reaped).toEqual({ engines: 0, runs: 0, bridges: 0, images: 0, rules: 0 });
    expect(await registryDigest(IMAGE_A, 'live')).toBe(out.digest);
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('a worker killed with SIGKILL mid-build leaves nothing once the reaper has run', async () => {
    const repo = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 120\n` });
    cleanup.push(repo.dir);
    const build = buildRecord({ repo: 'acme/killed', sha: repo.sha, image: IMAGE_A, tags: ['killed'], cloneUrl: `file://${repo.dir}` });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'support', 'builder-process.ts'), JSON.stringify({ redisUrl: redisServer.url, dataDir, build, isolation: 'dedicated' })],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/ started\n/.test(out)) resolve();
      });
      child.once('exit', () => reject(new Error(`worker exited early: ${out}`)));
    });
    expect(await leftovers(dataDir)).not.toEqual([]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const report = await reap({ dataDir, docker });
    expect(report).toMatchObject({ engines: 1, runs: 1 });
    expect(await leftovers(dataDir)).toEqual([]);
    expect(await registryDigest(IMAGE_A, 'killed')).toBeNull();
  });
});
