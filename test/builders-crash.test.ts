import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServe, startWorker, type Running, type ServeHandle } from '../src/main.js';
import type { BuildRecord } from '../src/store/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { LOCAL_SOURCES } from '../dev/sources.js';
import { ADMIN, SECRET, api, deliver, eventually, pushPayload } from '../dev/webhooks.js';
import { BASE, REGISTRY, deleteRegistryRepo, gitHttpServer, makeRepo, registryDigest } from '../dev/builders.js';
import { leftovers } from './support/builders.js';

/** A `slipway worker` killed with SIGKILL mid-build: the next worker reaps what it left and the build still ends once. */

const run = Date.now().toString(36);
const REPO = `acme/crash-${run}`;
const IMAGE = `${REGISTRY}/slipway-test/crash-${run}`;
let redis: TestRedis;
let serve: ServeHandle;
let worker: Running | undefined;
let child: ChildProcess | undefined;
let dataDir: string;
let git: { url: string; close(): Promise<void> };
let repoDir: string;
const env: Record<string, string> = {};

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(path.join(tmpdir(), 'slipway-crash-'));
  Object.assign(env, {
    SLIPWAY_REDIS_URL: redis.url,
    SLIPWAY_PORT: '0',
    SLIPWAY_WEBHOOK_SECRET: SECRET,
    SLIPWAY_ADMIN_TOKEN: ADMIN,
    SLIPWAY_LOG_LEVEL: 'info',
    SLIPWAY_SOURCE_ALLOW: LOCAL_SOURCES,
    SLIPWAY_DATA_DIR: dataDir,
  });
  serve = await startServe(loadConfig({ ...env, SLIPWAY_LOG_LEVEL: 'silent' }));
  const repo = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 8 && echo finished\n` });
  repoDir = repo.dir;
  git = await gitHttpServer(path.dirname(repoDir));
  const config = `repository: ${REPO}\nimage: ${IMAGE}\nbuilder: { isolation: dedicated }\nrules:\n  - { name: edge, source: branch, match: main, tags: [edge] }\n`;
  expect((await api(serve.url, 'PUT', `/api/repos/${REPO}`, { text: config })).status).toBe(200);
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await worker?.close();
  await serve?.close();
  await redis?.stop();
  await git?.close();
  await deleteRegistryRepo(IMAGE);
  await rm(dataDir, { recursive: true, force: true });
  await rm(repoDir, { recursive: true, force: true });
});

describe('worker SIGKILL mid-build', () => {
  it('leaves nothing once the next worker has reaped, and the build is taken over and succeeds', { timeout: 180_000 }, async () => {
    child = spawn(process.execPath, [path.join(import.meta.dirname, '..', 'bin', 'slipway.js'), 'worker'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(async () => out.includes('slipway worker: started'));

    const payload = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: (await import('../dev/builders.js')).git(repoDir, 'rev-parse', 'HEAD') });
    (payload.repository as Record<string, unknown>).clone_url = `${git.url}/${path.basename(repoDir)}`;
    const id = ((await deliver(serve.url, { event: 'push', payload })).body as { builds: string[] }).builds[0]!;

    const reader = new Redis(redis.url);
    await eventually(async () => {
      const entries = await reader.xrange(`slipway:build:${id}:log`, '-', '+');
      return entries.some(([, f]) => / started$/.test(f[f.indexOf('m') + 1] ?? ''));
    });
    reader.disconnect();
    expect(await leftovers(dataDir)).not.toEqual([]);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));

    // The next worker reaps at start, before it takes any build.
    worker = await startWorker(loadConfig({ ...env, SLIPWAY_LOG_LEVEL: 'silent' }));
    expect(await leftovers(dataDir)).toEqual([]);

    const record = await eventually(async () => {
      const r = (await api(serve.url, 'GET', `/api/builds/${id}`)).body as BuildRecord;
      return ['succeeded', 'failed', 'cancelled', 'superseded'].includes(r.status) ? r : null;
    }, 250);
    expect(record).toMatchObject({ status: 'succeeded', error: null });
    expect(await registryDigest(IMAGE, 'edge')).toBe(record.digest);
    const log = await (await fetch(`${serve.url}/api/builds/${id}/log`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(log).toMatch(/resuming on worker/);
    expect(log).toMatch(/#\d+ finished/);
    expect(await leftovers(dataDir)).toEqual([]);
  });
});
