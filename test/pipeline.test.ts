import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { Deployer, DeploymentStore, repoConfigSource } from '../src/deploy/index.js';
import { startWorker, type Running } from '../src/main.js';
import { Lifecycle } from '../src/pipeline/index.js';
import { Lanes } from '../src/queue/index.js';
import { rulesEngine } from '../src/webhooks/index.js';
import { BuildStore, RepoStore, buildKeys, encodeBuild, type BuildRecord } from '../src/store/index.js';
import { eventually, removeDeployObjects, served } from '../dev/deploy.js';
import { buildTestImage, type TestImage } from '../dev/deploy-images.js';
import { freePort, startRedis, type TestRedis } from '../dev/redis.js';
import { deleteRegistryRepo } from '../dev/builders.js';

/**
 * src/pipeline: a succeeded build is rolled out to the environments its rules name, even when the
 * worker that ran it died before asking; the reconciler asks exactly once, and never replaces a
 * rollout made after the build ended.
 */

const run = Date.now().toString(36);
const REPOSITORY = `127.0.0.1:5000/slipway-test/pipeline-${run}`;
const log = pino({ level: 'silent' });
let redisServer: TestRedis;
let redis: Redis;
/** The SIGKILL test's own Redis: the real worker it starts rolls out every pending request it finds. */
let crashServer: TestRedis;
let image: TestImage;
let port: number;

beforeAll(async () => {
  redisServer = await startRedis();
  crashServer = await startRedis();
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  image = await buildTestImage('v1', { repository: REPOSITORY });
  port = await freePort();
}, 180_000);

afterAll(async () => {
  await removeDeployObjects(new Docker(), `acme/pipeline-${run}`).catch(() => undefined);
  await deleteRegistryRepo(REPOSITORY);
  redis?.disconnect();
  await redisServer?.stop();
  await crashServer?.stop();
});

async function storeRepo(repo: string, env: { service: string; port: number }): Promise<void> {
  const config = rulesEngine.normalise({
    repository: repo,
    image: REPOSITORY,
    environments: { staging: { service: env.service, ports: [`${env.port}:8080`] } },
    rules: [{ name: 'main', source: 'branch', match: 'main', tags: ['edge'], deploy: 'staging' }],
  });
  await new RepoStore(redis).put(repo, config, 'admin', new Date());
}

function queued(repo: string, n: number): BuildRecord {
  return {
    id: `b-pipeline-${run}-${n}`, repo, ref: 'refs/heads/main', sha: String(n).repeat(40).slice(0, 40), rules: ['main'], tags: ['edge'], image: REPOSITORY,
    status: 'queued', digest: null, error: null, queuedAt: new Date().toISOString(), startedAt: null, finishedAt: null, deployments: [],
    context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: ['staging'], cloneUrl: null, deliveryId: null,
    trigger: 'webhook', by: 'github:octocat', supersededBy: null, warnings: [],
  };
}

let seq = 0;
/** A succeeded build of `repo` as the lanes leave it, `finishedAgoMs` ago, whose auto-deploy nobody requested. */
async function succeeded(repo: string, n: number, finishedAgoMs = 0): Promise<BuildRecord> {
  const finishedAt = new Date(Date.now() - finishedAgoMs).toISOString();
  const build: BuildRecord = { ...queued(repo, n), status: 'succeeded', digest: image.digest, startedAt: finishedAt, finishedAt };
  await redis.hset(buildKeys.record(build.id), ...encodeBuild(build));
  await redis.zadd(buildKeys.byStatus('succeeded'), ++seq, build.id);
  return build;
}

function lifecycleOf(o: { recoverWithinMs?: number } = {}) {
  const store = new DeploymentStore(redis);
  const deployer = new Deployer({ store, configs: repoConfigSource(new RepoStore(redis)) });
  return { store, deployer, lifecycle: new Lifecycle({ deployer, builds: new BuildStore(redis), publish: () => undefined, log, ...o }) };
}

describe('the reconciler', () => {
  it('requests a succeeded build\'s never-requested auto-deploy exactly once, and records it on the build', async () => {
    const repo = `acme/reconcile-${run}`;
    await storeRepo(repo, { service: `reconcile-${run}`, port: 18401 });
    const build = await succeeded(repo, 1);
    const { lifecycle, deployer } = lifecycleOf();
    const [id, ...more] = await lifecycle.reconcile();
    expect(more).toEqual([]);
    expect(await deployer.autoDeployOf(build.id, 'staging')).toBe(id);
    expect(await deployer.latest({ repo, environment: 'staging' })).toMatchObject({ id, build: build.id, digest: image.digest, trigger: 'build', status: 'pending' });
    expect((await new BuildStore(redis).get(build.id))!.deployments).toEqual([id]);
    expect(await lifecycle.reconcile()).toEqual([]);
    // Asked again on its success (a second report of it): nothing more either.
    expect(await deployer.onBuildSucceeded(build)).toEqual([]);
  });

  it('takes only the newest succeeded build of an environment, and none that is too old', async () => {
    const repo = `acme/reconcile-newest-${run}`;
    await storeRepo(repo, { service: `reconcile-newest-${run}`, port: 18402 });
    const { lifecycle, deployer } = lifecycleOf({ recoverWithinMs: 60_000 });
    const old = await succeeded(repo, 2, 5 * 60_000);
    expect(await lifecycle.reconcile()).toEqual([]);
    expect(await deployer.autoDeployOf(old.id, 'staging')).toBeNull();
    const older = await succeeded(repo, 3, 2_000);
    const newer = await succeeded(repo, 4, 1_000);
    const [id] = await lifecycle.reconcile();
    expect(await deployer.autoDeployOf(newer.id, 'staging')).toBe(id);
    expect(await deployer.autoDeployOf(older.id, 'staging')).toBeNull();
  });

  it('never replaces a rollout someone asked for after the build ended', async () => {
    const repo = `acme/reconcile-after-${run}`;
    await storeRepo(repo, { service: `reconcile-after-${run}`, port: 18404 });
    const { lifecycle, deployer } = lifecycleOf();
    const build = await succeeded(repo, 6, 1_000);
    const manual = await deployer.deploy(repo, 'staging', { digest: image.digest }, { name: 'alice', role: 'admin' });
    expect(await lifecycle.reconcile()).toEqual([]);
    expect(await deployer.autoDeployOf(build.id, 'staging')).toBeNull();
    expect(await deployer.latest({ repo, environment: 'staging' })).toMatchObject({ id: manual.id, trigger: 'manual' });
  });

  it('asks again on the next pass when a request failed', async () => {
    const repo = `acme/reconcile-retry-${run}`;
    const build = await succeeded(repo, 5);
    const { lifecycle, deployer } = lifecycleOf();
    // No config yet: the request fails, and nothing is marked.
    expect(await lifecycle.reconcile()).toEqual([]);
    expect(await deployer.autoDeployOf(build.id, 'staging')).toBeNull();
    await storeRepo(repo, { service: `reconcile-retry-${run}`, port: 18403 });
    expect(await lifecycle.reconcile()).toHaveLength(1);
  });
});

describe('a worker SIGKILLed between a build\'s success and its rollout request', () => {
  let dying: ChildProcess | undefined;
  let worker: Running | undefined;
  let dataDir: string;
  afterAll(async () => {
    dying?.kill('SIGKILL');
    await worker?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('loses no rollout: the next worker\'s reconciler requests it and staging serves the build', { timeout: 300_000 }, async () => {
    const repo = `acme/pipeline-${run}`;
    redis.disconnect();
    redis = new Redis(crashServer.url, { maxRetriesPerRequest: null });
    await storeRepo(repo, { service: `pipeline-${run}`, port });
    dying = spawn(process.execPath, ['--import', 'tsx', 'test/support/dying-worker.ts', JSON.stringify({ redisUrl: crashServer.url, digest: image.digest })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    dying.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(async () => out.includes('ready'), 60_000, 50);
    const build = queued(repo, 9);
    await new Lanes({ redis, log }).submit([build]);
    await eventually(async () => out.includes(`requesting ${build.id}`), 60_000, 20).catch(async (err) => {
      throw new Error(`${String(err)}; the worker said: ${out}; the build is ${JSON.stringify(await new BuildStore(redis).get(build.id))}`);
    });
    dying.kill('SIGKILL');
    await new Promise((r) => dying!.once('exit', r));
    const store = new BuildStore(redis);
    expect(await store.get(build.id)).toMatchObject({ status: 'succeeded', digest: image.digest, deployments: [] });
    expect(await new DeploymentStore(redis).autoDeployOf(build.id, 'staging')).toBeNull();

    dataDir = await mkdtemp(path.join(tmpdir(), 'slw-pipeline-'));
    worker = await startWorker(loadConfig({ SLIPWAY_REDIS_URL: crashServer.url, SLIPWAY_DATA_DIR: dataDir, SLIPWAY_LOG_LEVEL: 'silent' }), { runner: { run: async () => ({ digest: image.digest }) } });
    const deployment = await eventually(async () => (await store.get(build.id))!.deployments[0], 60_000);
    const done = await eventually(async () => {
      const r = await new DeploymentStore(redis).get(deployment);
      return r && ['succeeded', 'failed'].includes(r.status) ? r : null;
    }, 240_000);
    expect(done).toMatchObject({ environment: 'staging', build: build.id, digest: image.digest, trigger: 'build', status: 'succeeded' });
    expect(await eventually(async () => (await served(port)) === 'v1', 60_000)).toBe(true);
  });
});
