import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployer, DeploymentStore, repoConfigSource } from '../src/deploy/index.js';
import { AuditStore, BuildStore, EventBus, RepoStore, type BuildRecord } from '../src/store/index.js';
import { buildTestImage, removeTestImages, TEST_REPOSITORY, type TestImage } from '../dev/deploy-images.js';
import { api, eventually, recordBuild as recordBuildOf, removeDeployObjects, served, settled, startDeployStack, startLoad, type DeployStack } from '../dev/deploy.js';

/**
 * Releases of an application of several services on the host's real Swarm, registry and entry proxy:
 * one image (rule `app`) runs as a migration job, a web service behind the proxy and a worker, as a
 * real app's image often does. The worker answers on its own port and its health check refuses an
 * image whose page says `broken`; the job refuses to migrate to `v3`. Load comes from another process.
 */

const REPO = 'slipway-test/release-e2e';
const STAGING_PORT = 18094;
const PRODUCTION_PORT = 18095;
const SERVICES = {
  migrate: {
    build: 'app',
    role: 'job',
    command: ['sh', '-c', 'v=$(cat /www/index.html); echo "migrating the schema for $v"; [ "$v" != v3 ] || { echo "migration 7 failed: column orders.total already exists" >&2; exit 3; }'],
  },
  web: { build: 'app', ports: [`${STAGING_PORT}:8080`] },
  worker: {
    build: 'app',
    command: ['httpd', '-f', '-p', '8081', '-h', '/www'],
    replicas: 1,
    env: { QUEUE: 'orders' },
    health: { cmd: ['CMD-SHELL', '! grep -q broken /www/index.html && echo | nc 127.0.0.1 8081 >/dev/null'], interval: '1s', retries: 2 },
    depends_on: ['web'],
  },
};
const CONFIG = {
  repository: REPO,
  image: TEST_REPOSITORY,
  environments: {
    staging: { service: 'slipway-rel-staging', replicas: 2, update: { delay: '0s', monitor: '2s' }, services: SERVICES },
    production: {
      service: 'slipway-rel-production',
      replicas: 3,
      promote_from: 'staging',
      protected: true,
      update: { delay: '0s', monitor: '2s' },
      // Production's worker does not wait for web: the two update at the same time.
      services: { ...SERVICES, web: { build: 'app', ports: [`${PRODUCTION_PORT}:8080`] }, worker: { ...SERVICES.worker, depends_on: [] } },
    },
  },
  rules: [{ name: 'app', source: 'branch', match: 'main', tags: ['edge'], deploy: 'staging' }],
};

let stack: DeployStack;
let v1: TestImage, v2: TestImage, v3: TestImage, broken: TestImage;
let deployer: string;

const envPath = (env: string) => `/api/repos/${REPO}/environments/${env}`;

const recordBuild = (image: TestImage) => recordBuildOf(stack.client, REPO, image, { deploy: ['staging'] });

async function deployBuild(env: string, build: BuildRecord) {
  const res = await api(stack.url, 'POST', `${envPath(env)}/deploy`, { token: deployer, json: { build: build.id } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** Each service's digest as Swarm runs it now (from the service spec's image). */
async function runningDigests(prefix: string): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const name of ['web', 'worker']) {
    const svc = await stack.docker.getService(`${prefix}-${name}`).inspect().catch(() => null);
    const image: string | undefined = svc?.Spec?.TaskTemplate?.ContainerSpec?.Image;
    out[name] = image ? image.slice(image.indexOf('@') + 1) : null;
  }
  return out;
}

/** Follows a release to its end, keeping every distinct `service:status` set it showed on the way. */
async function followed(id: string): Promise<{ done: any; seen: Record<string, string>[] }> {
  const seen: Record<string, string>[] = [];
  const done = await eventually(async () => {
    const r = (await api(stack.url, 'GET', `/api/deployments/${id}`)).body;
    if (r.services) {
      const now = statuses(r);
      if (!isDeepStrictEqual(seen.at(-1), now)) seen.push(now);
    }
    return ['pending', 'running'].includes(r.status) ? null : r;
  }, 240_000, 50);
  return { done, seen };
}

const statuses = (record: { services: { name: string; status: string }[] }) => Object.fromEntries(record.services.map((s) => [s.name, s.status]));

beforeAll(async () => {
  [v1, v2, v3, broken] = await Promise.all([buildTestImage('v1'), buildTestImage('v2'), buildTestImage('v3'), buildTestImage('broken')]);
  stack = await startDeployStack();
  await removeDeployObjects(stack.docker, REPO);
  const put = await api(stack.url, 'PUT', `/api/repos/${REPO}`, { json: CONFIG });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  deployer = await stack.token('ops-olga', 'deployer');
}, 300_000);

afterAll(async () => {
  await stack?.close();
  if (stack) await removeDeployObjects(stack.docker, REPO);
  await removeTestImages([v1, v2, v3, broken].filter(Boolean));
}, 180_000);

describe('releases of an application of several services', () => {
  it('refuses a bare digest for an environment of services, naming them', async () => {
    const res = await api(stack.url, 'POST', `${envPath('staging')}/deploy`, { token: deployer, json: { digest: v1.digest } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('digest_needs_service');
    expect(res.body.error).toContain('migrate, web, worker');
  });

  it('releases staging as one: the job first, then web, then the worker; each service at the build\'s digest', async () => {
    const env = await api(stack.url, 'GET', envPath('staging'));
    expect(env.body.services.map((s: { name: string; role: string; service: string }) => `${s.name}:${s.role}:${s.service}`)).toEqual([
      'migrate:job:slipway-rel-staging-migrate',
      'web:web:slipway-rel-staging-web',
      'worker:worker:slipway-rel-staging-worker',
    ]);
    const build = await recordBuild(v1);
    const queued = await deployBuild('staging', build);
    expect(queued.services.map((s: { name: string; digest: string }) => `${s.name}@${s.digest}`)).toEqual(['migrate', 'web', 'worker'].map((n) => `${n}@${v1.digest}`));
    const { done, seen } = await followed(queued.id);
    expect(done.status, done.error).toBe('succeeded');
    // Staging's worker depends_on web: it never started before web was healthy, and web never before the job.
    expect(seen.filter((s) => s.worker !== 'pending' && s.web !== 'succeeded')).toEqual([]);
    expect(seen.filter((s) => s.web !== 'pending' && s.migrate !== 'succeeded')).toEqual([]);
    expect(statuses(done)).toEqual({ migrate: 'succeeded', web: 'succeeded', worker: 'succeeded' });
    expect(await runningDigests('slipway-rel-staging')).toEqual({ web: v1.digest, worker: v1.digest });
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'v1')).toBe(true);
    // The worker runs its own command with the merged env, on the environment's shared network.
    const worker = await stack.docker.getService('slipway-rel-staging-worker').inspect();
    expect(worker.Spec.TaskTemplate.ContainerSpec.Args).toEqual(['httpd', '-f', '-p', '8081', '-h', '/www']);
    expect(worker.Spec.TaskTemplate.ContainerSpec.Env).toContain('QUEUE=orders');
    const web = await stack.docker.getService('slipway-rel-staging-web').inspect();
    expect(worker.Spec.TaskTemplate.Networks[0].Target).toBe(web.Spec.TaskTemplate.Networks[0].Target);
  }, 300_000);

  it('a failing migration job stops the release before any service changes, with the job\'s own output', async () => {
    const before = await runningDigests('slipway-rel-staging');
    const done = await settled(stack.url, (await deployBuild('staging', await recordBuild(v3))).id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/^job migrate failed, so no service was changed: job slipway-rel-staging-migrate failed: .*exit.*migration 7 failed: column orders.total already exists/);
    expect(statuses(done)).toEqual({ migrate: 'failed', web: 'pending', worker: 'pending' });
    expect(await runningDigests('slipway-rel-staging')).toEqual(before);
    expect(await served(STAGING_PORT)).toBe('v1');
  }, 300_000);

  it('promotes staging\'s release to protected production, then a new one under load with 0 failed requests', async () => {
    const first = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect((await settled(stack.url, first.body.id)).status).toBe('succeeded');
    expect(await eventually(async () => (await served(PRODUCTION_PORT)) === 'v1')).toBe(true);

    // A build of the rule auto-deploys to staging (its rule says deploy: staging) as one release.
    const build = await recordBuild(v2);
    const auto = new Deployer({ store: new DeploymentStore(stack.client), configs: repoConfigSource(new RepoStore(stack.client)), builds: new BuildStore(stack.client), audit: new AuditStore(stack.client), events: new EventBus(stack.client) });
    const [id] = await auto.onBuildSucceeded(build);
    expect((await settled(stack.url, id!)).status).toBe('succeeded');

    const load = await startLoad(PRODUCTION_PORT);
    const promoted = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer });
    expect(promoted.status).toBe(202);
    const { done, seen } = await followed(promoted.body.id);
    await eventually(async () => (await served(PRODUCTION_PORT)) === 'v2');
    // Independent services roll at the same time, after the job.
    expect(seen).toContainEqual({ migrate: 'succeeded', web: 'running', worker: 'running' });
    const result = await load.stop();
    expect(done.status, done.error).toBe('succeeded');
    expect(done.trigger).toBe('promote');
    expect(done.services.map((s: { digest: string; before: string }) => [s.before, s.digest])).toEqual([[v1.digest, v2.digest], [v1.digest, v2.digest], [v1.digest, v2.digest]]);
    expect(await runningDigests('slipway-rel-production')).toEqual({ web: v2.digest, worker: v2.digest });
    expect(result.failed, JSON.stringify(result.errors.slice(0, 5))).toBe(0);
    expect(result.versions.v2).toBeGreaterThan(0);
    // Production keeps its own replicas.
    const web = await stack.docker.getService('slipway-rel-production-web').inspect();
    expect(web.Spec.Mode.Replicated.Replicas).toBe(3);
    // The audit names each service's before and after.
    const audit = await api(stack.url, 'GET', '/api/audit?limit=20', { token: deployer });
    const entry = audit.body.entries.find((e: { result: string; environment?: string }) => e.environment === 'production' && e.result === 'succeeded');
    expect(entry.changes).toContain(`web: ${v1.digest} → ${v2.digest} (succeeded)`);
  }, 420_000);

  it('an unhealthy worker rolling beside web stops web where it is and restores both, with 0 failed requests', async () => {
    const load = await startLoad(PRODUCTION_PORT);
    const { done, seen } = await followed((await deployBuild('production', await recordBuild(broken))).id);
    const result = await load.stop();
    expect(done.status).toBe('rolled_back');
    // Production's worker does not wait for web: both were rolling when the worker failed.
    expect(seen).toContainEqual({ migrate: 'succeeded', web: 'running', worker: 'running' });
    expect(done.error).toMatch(/^service worker \(slipway-rel-production-worker\) did not become healthy: .*; restored worker to sha256:[0-9a-f]{12}, web to sha256:[0-9a-f]{12}$/);
    expect(statuses(done)).toEqual({ migrate: 'succeeded', web: 'rolled_back', worker: 'rolled_back' });
    expect(await runningDigests('slipway-rel-production')).toEqual({ web: v2.digest, worker: v2.digest });
    expect(result.failed, JSON.stringify(result.errors.slice(0, 5))).toBe(0);
    expect(await served(PRODUCTION_PORT)).toBe('v2');
    // Every production task runs v2 again: none of the broken image is left running.
    const tasks = await stack.docker.listTasks({ filters: { service: ['slipway-rel-production-web'], 'desired-state': ['running'] } });
    expect(tasks.map((t: any) => String(t.Spec.ContainerSpec.Image).split('@')[1])).toEqual(tasks.map(() => v2.digest));
  }, 420_000);

  it('an unhealthy worker rolls the already updated web service back too, with 0 failed requests', async () => {
    const load = await startLoad(STAGING_PORT);
    const done = await settled(stack.url, (await deployBuild('staging', await recordBuild(broken))).id);
    const result = await load.stop();
    expect(done.status).toBe('rolled_back');
    // The worker first (it depends on web), whose restore is Swarm's own rollback followed to its end.
    expect(done.error).toMatch(/^service worker \(slipway-rel-staging-worker\) did not become healthy: .*; restored worker to sha256:[0-9a-f]{12}, web to sha256:[0-9a-f]{12}$/);
    expect(statuses(done)).toEqual({ migrate: 'succeeded', web: 'rolled_back', worker: 'rolled_back' });
    expect(await runningDigests('slipway-rel-staging')).toEqual({ web: v2.digest, worker: v2.digest });
    expect(result.failed, JSON.stringify(result.errors.slice(0, 5))).toBe(0);
    expect(result.versions.broken).toBeGreaterThan(0);
    expect(await served(STAGING_PORT)).toBe('v2');
    const env = await api(stack.url, 'GET', envPath('staging'));
    expect(env.body.current.services.map((s: { digest: string }) => s.digest)).toEqual([v2.digest, v2.digest, v2.digest]);
  }, 420_000);

  it('settles a release whose worker process was SIGKILLed between two service updates', async () => {
    await stack.worker.stop();
    const queued = await deployBuild('staging', await recordBuild(v1));
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./support/deploy-worker-process.ts', import.meta.url)), stack.redis.url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // Killed once web is done and the worker's update is under way.
    await eventually(async () => {
      const r = (await api(stack.url, 'GET', `/api/deployments/${queued.id}`)).body;
      return r.services?.find((s: { name: string }) => s.name === 'web')?.status === 'succeeded';
    }, 240_000, 50);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await api(stack.url, 'GET', `/api/deployments/${queued.id}`)).body.status).toBe('running');

    stack.startWorker();
    const done = await settled(stack.url, queued.id);
    expect(done.status, done.error).toBe('succeeded');
    expect(statuses(done)).toEqual({ migrate: 'succeeded', web: 'succeeded', worker: 'succeeded' });
    expect(await runningDigests('slipway-rel-staging')).toEqual({ web: v1.digest, worker: v1.digest });
  }, 420_000);

  it('rolls back to a release two back, restoring every service\'s digest without a build', async () => {
    // Staging's succeeded releases, newest first: v1 (after the SIGKILL), v2 (the auto-deploy), v1. Two back is v2's.
    const env = await api(stack.url, 'GET', envPath('staging'));
    const good = env.body.history.filter((r: { status: string }) => r.status === 'succeeded');
    const twoBack = good[1];
    expect(twoBack.digest).toBe(v2.digest);
    const res = await api(stack.url, 'POST', `${envPath('staging')}/rollback`, { token: deployer, json: { revision: twoBack.revision } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const done = await settled(stack.url, res.body.id);
    expect(done.status, done.error).toBe('succeeded');
    expect(done.trigger).toBe('rollback');
    expect(await runningDigests('slipway-rel-staging')).toEqual({ web: v2.digest, worker: v2.digest });
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'v2')).toBe(true);
  }, 300_000);
});
