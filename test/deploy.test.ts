import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployer, DeploymentStore, repoConfigSource } from '../src/deploy/index.js';
import { AuditStore, buildKeys, BuildStore, encodeBuild, EventBus, RepoStore, type BuildRecord } from '../src/store/index.js';
import { buildTestImage, removeTestImages, TEST_REPOSITORY, type TestImage } from '../dev/deploy-images.js';
import { api, eventually, removeDeployObjects, served, settled, startDeployStack, startLoad, type DeployStack } from '../dev/deploy.js';

/**
 * End to end on the host's real Swarm and registry: staging and production of one repository, each a
 * dnsrr service behind the HAProxy entry proxy slipway builds and owns (this kernel has no IPVS, so the
 * routing mesh cannot balance here: traffic goes through the `proxy` endpoint). HTTP load comes from
 * another process and every failed request is counted.
 */

const run = promisify(execFile);
const REPO = 'slipway-test/deploy-e2e';
const STAGING_PORT = 18080;
const PRODUCTION_PORT = 18081;
const CONFIG = {
  repository: REPO,
  image: TEST_REPOSITORY,
  environments: {
    staging: {
      service: 'slipway-test-staging',
      replicas: 2,
      ports: [`${STAGING_PORT}:8080`],
      update: { delay: '0s', monitor: '2s' },
    },
    qa: {
      service: 'slipway-test-qa',
      replicas: 1,
      ports: ['18087:8080'],
      // Failed checks inside the start period do not count: a task that never turns healthy stays `starting`,
      // and Swarm waits for it forever. slipway's own deadline (short for qa in this suite) ends that.
      health: { cmd: ['CMD-SHELL', 'echo | nc 127.0.0.1 8080 >/dev/null'], interval: '1s', retries: 2, start_period: '10m' },
      update: { delay: '0s', monitor: '1s' },
    },
    production: {
      service: 'slipway-test-production',
      replicas: 4,
      ports: [`${PRODUCTION_PORT}:8080`],
      promote_from: 'staging',
      protected: true,
      update: { delay: '0s', monitor: '2s' },
    },
  },
  rules: [{ name: 'main', source: 'branch', match: 'main', tags: ['edge'], deploy: 'staging' }],
};

let stack: DeployStack;
let v1: TestImage, v2: TestImage, v3: TestImage, bad: TestImage;
let developer: string;
let deployer: string;

const envPath = (env: string) => `/api/repos/${REPO}/environments/${env}`;

async function deploy(env: string, digest: string, token = deployer) {
  return api(stack.url, 'POST', `${envPath(env)}/deploy`, { token, json: { digest } });
}

beforeAll(async () => {
  [v1, v2, v3, bad] = await Promise.all([buildTestImage('v1'), buildTestImage('v2'), buildTestImage('v3'), buildTestImage('bad', { broken: true })]);
  stack = await startDeployStack({ deadlineMs: (c) => (c.service === 'slipway-test-qa' ? 10_000 : 300_000) });
  await removeDeployObjects(stack.docker, REPO);
  const put = await api(stack.url, 'PUT', `/api/repos/${REPO}`, { json: CONFIG });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  developer = await stack.token('dev-dora', 'developer');
  deployer = await stack.token('ops-olga', 'deployer');
}, 300_000);

afterAll(async () => {
  await stack?.close();
  if (stack) await removeDeployObjects(stack.docker, REPO);
  await removeTestImages([v1, v2, v3, bad].filter(Boolean));
}, 180_000);

describe('environments, promotion and rollback on Swarm', () => {
  it('refuses to promote while staging has nothing, and refuses developers on protected production', async () => {
    const empty = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer });
    expect(empty.status).toBe(409);
    expect(empty.body.error).toMatch(/staging has no succeeded revision/);

    const byDeveloper = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: developer });
    expect(byDeveloper.status).toBe(403);
    const deployByDeveloper = await deploy('production', v1.digest, developer);
    expect(deployByDeveloper.status).toBe(403);
    expect(deployByDeveloper.body.error).toMatch(/protected/);

    const badDigest = await deploy('staging', 'sha256:nope');
    expect(badDigest.status).toBe(400);
    expect(badDigest.body.errors[0].path).toBe('digest');
    const unknownEnv = await deploy('nowhere', v1.digest);
    expect(unknownEnv.status).toBe(404);

    // Nothing was recorded by the refused requests.
    const prod = await api(stack.url, 'GET', envPath('production'));
    expect(prod.body).toMatchObject({ name: 'production', service: 'slipway-test-production', current: null, history: [] });
  });

  it('deploys a digest to staging, which then serves it over its published port; promote waits for it', async () => {
    const seen: { id: string; status: string }[] = [];
    const bus = new EventBus(stack.client);
    await bus.subscribe((e) => {
      if (e.type === 'deployment') seen.push({ id: e.record.id, status: e.record.status });
    });
    const res = await deploy('staging', v1.digest, developer);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ repo: REPO, environment: 'staging', revision: 1, digest: v1.digest, image: TEST_REPOSITORY, trigger: 'manual', by: 'dev-dora', status: 'pending' });

    // Mid-rollout, staging's digest is not promotable yet.
    const early = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer });
    expect(early.status).toBe(409);
    expect(early.body.error).toMatch(/staging is mid-rollout/);

    const done = await settled(stack.url, res.body.id);
    expect(done).toMatchObject({ status: 'succeeded', error: null });
    expect(done.startedAt).toBeTruthy();
    expect(done.finishedAt).toBeTruthy();
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'v1')).toBe(true);

    const svc = await stack.docker.getService('slipway-test-staging').inspect();
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(`${TEST_REPOSITORY}@${v1.digest}`);
    expect(svc.Spec.TaskTemplate.ContainerSpec.Init).toBe(true);
    expect(svc.Spec.EndpointSpec.Mode).toBe('dnsrr');
    expect(svc.Spec.UpdateConfig).toMatchObject({ Parallelism: 1, Order: 'start-first', FailureAction: 'rollback', Monitor: 2e9 });

    const env = await api(stack.url, 'GET', envPath('staging'));
    expect(env.body.current.id).toBe(res.body.id);
    expect(env.body.history.map((d: { id: string }) => d.id)).toEqual([res.body.id]);
    // Repository names are looked up ignoring case, as on GitHub: same environment, same records.
    const upper = await api(stack.url, 'GET', `/api/repos/${REPO.toUpperCase()}/environments/staging`);
    expect(upper.body.current.id).toBe(res.body.id);
    // State changes went out on the event bus (what GET /api/events streams).
    await eventually(async () => seen.some((e) => e.status === 'succeeded'), 10_000, 50);
    expect(seen).toEqual([
      { id: res.body.id, status: 'pending' },
      { id: res.body.id, status: 'running' },
      { id: res.body.id, status: 'succeeded' },
    ]);
    await bus.close();
  });

  it('ends a rollout that Swarm would wait on forever at slipway\'s deadline, rolling the service back', async () => {
    const first = await deploy('qa', v1.digest);
    expect(await settled(stack.url, first.body.id)).toMatchObject({ status: 'succeeded' });
    const stuck = await deploy('qa', bad.digest);
    const done = await settled(stack.url, stuck.body.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/^rollout did not finish before slipway's deadline; slipway rolled the service back/);
    const svc = await stack.docker.getService('slipway-test-qa').inspect();
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(`${TEST_REPOSITORY}@${v1.digest}`);
    expect(await eventually(async () => (await served(18087)) === 'v1')).toBe(true);
    const qa = await api(stack.url, 'GET', envPath('qa'));
    expect(qa.body.current.id).toBe(first.body.id);
  }, 120_000);

  it('promotes staging\'s digest to production (creating it), and a second promote is a no-op 200', async () => {
    const res = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ environment: 'production', revision: 1, digest: v1.digest, trigger: 'promote', by: 'ops-olga' });
    expect(await settled(stack.url, res.body.id)).toMatchObject({ status: 'succeeded' });
    expect(await eventually(async () => (await served(PRODUCTION_PORT)) === 'v1')).toBe(true);

    const again = await api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(res.body.id);
    const prod = await api(stack.url, 'GET', envPath('production'));
    expect(prod.body.history).toHaveLength(1);
  });

  it('promotes a new version to 4 replicas under load with zero failed requests; concurrent promotes serialise', async () => {
    const staged = await deploy('staging', v2.digest);
    expect(await settled(stack.url, staged.body.id)).toMatchObject({ status: 'succeeded' });

    const load = await startLoad(PRODUCTION_PORT);
    const answers = await Promise.all([1, 2, 3].map(() => api(stack.url, 'POST', `${envPath('production')}/promote`, { token: deployer })));
    // One request started the rollout; the others saw it queued for the same digest and started nothing.
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 202]);
    const ids = new Set(answers.map((a) => a.body.id));
    expect(ids.size).toBe(1);
    const id = [...ids][0] as string;
    const done = await settled(stack.url, id);
    await eventually(async () => (await served(PRODUCTION_PORT)) === 'v2');
    const result = await load.stop();
    console.info(`promotion of 4 replicas under load: ${JSON.stringify(result)}`);

    expect(done).toMatchObject({ status: 'succeeded', digest: v2.digest, revision: 2 });
    expect(result.failed, JSON.stringify(result.errors)).toBe(0);
    expect(result.versions.v1).toBeGreaterThan(0);
    expect(result.versions.v2).toBeGreaterThan(0);
    expect(Object.keys(result.versions).sort()).toEqual(['v1', 'v2']);

    // Production runs exactly the digest staging runs.
    const [stagingEnv, prodEnv] = await Promise.all([api(stack.url, 'GET', envPath('staging')), api(stack.url, 'GET', envPath('production'))]);
    expect(prodEnv.body.current.digest).toBe(stagingEnv.body.current.digest);
    const svc = await stack.docker.getService('slipway-test-production').inspect();
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(`${TEST_REPOSITORY}@${v2.digest}`);

    const audit = await api(stack.url, 'GET', '/api/audit?limit=50', { token: deployer });
    expect(audit.status).toBe(200);
    const entries = audit.body.entries as { actor: string; action: string; environment?: string; from: string | null; to: string | null; result: string }[];
    expect(entries).toContainEqual(expect.objectContaining({ actor: 'ops-olga', action: 'environment.promote', environment: 'production', from: v1.digest, to: v2.digest, result: expect.stringMatching(/^queued/) }));
    expect(entries).toContainEqual(expect.objectContaining({ actor: 'ops-olga', action: 'rollout.promote', environment: 'production', from: v1.digest, to: v2.digest, result: 'succeeded' }));
    expect(entries.filter((e) => e.action === 'environment.promote' && e.to === v2.digest && e.result.startsWith('no-op'))).toHaveLength(2);
    const forDeveloper = await api(stack.url, 'GET', '/api/audit', { token: developer });
    expect(forDeveloper.status).toBe(403);
  }, 300_000);

  it('rolls a bad image back by itself: production keeps serving with zero failed requests, record says why', async () => {
    const load = await startLoad(PRODUCTION_PORT);
    const res = await deploy('production', bad.digest);
    expect(res.status).toBe(202);
    const done = await settled(stack.url, res.body.id);
    const result = await load.stop();
    console.info(`bad image under load: ${JSON.stringify(result)}; record error: ${done.error}`);

    expect(done.status).toBe('rolled_back');
    expect(done.error).toMatch(/rolled back/i);
    expect(done.error).toMatch(/unhealthy/);
    expect(result.failed, JSON.stringify(result.errors)).toBe(0);
    expect(Object.keys(result.versions)).toEqual(['v2']);
    expect(await served(PRODUCTION_PORT)).toBe('v2');

    const svc = await stack.docker.getService('slipway-test-production').inspect();
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(`${TEST_REPOSITORY}@${v2.digest}`);
    // The current revision is still the last one that succeeded.
    const prod = await api(stack.url, 'GET', envPath('production'));
    expect(prod.body.current.digest).toBe(v2.digest);
    expect(prod.body.history[0]).toMatchObject({ id: res.body.id, status: 'rolled_back' });
  }, 300_000);

  it('rolls back to the previous good revision (skipping the rolled-back one) with zero failed requests', async () => {
    const load = await startLoad(PRODUCTION_PORT);
    const res = await api(stack.url, 'POST', `${envPath('production')}/rollback`, { token: deployer, json: {} });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ trigger: 'rollback', digest: v1.digest });
    const done = await settled(stack.url, res.body.id);
    await eventually(async () => (await served(PRODUCTION_PORT)) === 'v1');
    const result = await load.stop();
    console.info(`rollback under load: ${JSON.stringify(result)}`);
    expect(done.status).toBe('succeeded');
    expect(result.failed, JSON.stringify(result.errors)).toBe(0);

    const byDeveloper = await api(stack.url, 'POST', `${envPath('production')}/rollback`, { token: developer, json: {} });
    expect(byDeveloper.status).toBe(403);
    const notGood = await api(stack.url, 'POST', `${envPath('production')}/rollback`, { token: deployer, json: { revision: 3 } });
    expect(notGood.status).toBe(409);
    expect(notGood.body.error).toMatch(/rolled_back/);
    const missing = await api(stack.url, 'POST', `${envPath('production')}/rollback`, { token: deployer, json: { revision: 99 } });
    expect(missing.status).toBe(404);
  }, 300_000);

  it('runs one rollout at a time per environment; a newer queued request replaces an older one', async () => {
    const first = await deploy('staging', v3.digest);
    await eventually(async () => (await api(stack.url, 'GET', `/api/deployments/${first.body.id}`)).body.status === 'running', 60_000, 50);
    const second = await deploy('staging', v1.digest);
    const third = await deploy('staging', v2.digest);
    expect([first.status, second.status, third.status]).toEqual([202, 202, 202]);

    const [a, b, c] = [await settled(stack.url, first.body.id), await settled(stack.url, second.body.id), await settled(stack.url, third.body.id)];
    expect(a.status).toBe('succeeded');
    expect(b.status).toBe('failed');
    expect(b.error).toBe(`superseded: replaced by ${third.body.id} (revision ${third.body.revision}) before it started`);
    expect(b.startedAt).toBeNull();
    expect(c.status).toBe('succeeded');
    expect(Date.parse(c.startedAt)).toBeGreaterThanOrEqual(Date.parse(a.finishedAt));
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'v2')).toBe(true);
  }, 300_000);

  it('auto-deploys a succeeded build to staging (once), never to protected production; deploys by build id', async () => {
    const build: BuildRecord = {
      id: 'b-deploy-e2e-1', repo: REPO, ref: 'refs/heads/main', sha: 'a'.repeat(40), rules: ['main'], tags: ['edge'], image: TEST_REPOSITORY,
      status: 'succeeded', digest: v1.digest, error: null, queuedAt: new Date().toISOString(), startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(), deployments: [], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false,
      deploy: ['staging', 'production'], cloneUrl: null, deliveryId: null, trigger: 'webhook', by: 'github:octocat', supersededBy: null, warnings: [],
    };
    await stack.client.hset(buildKeys.record(build.id), ...encodeBuild(build));
    const deployerOfWorker = new Deployer({
      store: new DeploymentStore(stack.client),
      configs: repoConfigSource(new RepoStore(stack.client)),
      builds: new BuildStore(stack.client),
      audit: new AuditStore(stack.client),
      events: new EventBus(stack.client),
    });
    const ids = await deployerOfWorker.onBuildSucceeded(build);
    expect(ids).toHaveLength(1);
    expect(await deployerOfWorker.onBuildSucceeded(build)).toEqual([]);
    const done = await settled(stack.url, ids[0]!);
    expect(done).toMatchObject({ environment: 'staging', trigger: 'build', by: 'slipway', build: build.id, digest: v1.digest, status: 'succeeded' });
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'v1')).toBe(true);
    const audit = await api(stack.url, 'GET', '/api/audit?limit=20');
    expect(audit.body.entries).toContainEqual(expect.objectContaining({ actor: 'slipway', environment: 'production', to: v1.digest, result: expect.stringMatching(/^refused: production is protected/) }));

    const byBuild = await api(stack.url, 'POST', `${envPath('staging')}/deploy`, { token: developer, json: { build: build.id } });
    expect(byBuild.status).toBe(202);
    expect(byBuild.body).toMatchObject({ build: build.id, digest: v1.digest, trigger: 'manual' });
    expect(await settled(stack.url, byBuild.body.id)).toMatchObject({ status: 'succeeded' });
    const unknownBuild = await api(stack.url, 'POST', `${envPath('staging')}/deploy`, { token: developer, json: { build: 'nope' } });
    expect(unknownBuild.status).toBe(404);
  }, 300_000);

  it('CLI: status, promote and rollback speak the API and exit 0 / 1 / 2', async () => {
    const cli = (args: string[], token: string) =>
      run(process.execPath, ['bin/slipway.js', ...args], { env: { ...process.env, SLIPWAY_URL: stack.url, SLIPWAY_TOKEN: token } }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const status = await cli(['status', REPO], developer);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^ENV\s+SERVICE/);
    expect(status.stdout).toMatch(/production\s+slipway-test-production\s+r\d+/);

    const refused = await cli(['rollback', REPO, '--env', 'production'], developer);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/protected/);
    const usage = await cli(['rollback', REPO, '--env', 'production', '--revision', 'x'], deployer);
    expect(usage.code).toBe(2);
    const noEnv = await cli(['rollback', REPO], deployer);
    expect(noEnv.code).toBe(2);
  }, 120_000);

  it('settles a rollout whose worker process was killed mid-way, from the service\'s real state', async () => {
    await stack.worker.stop();
    const res = await deploy('staging', v3.digest);
    // Another process picks the rollout up and is SIGKILLed while Swarm is still rolling.
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./support/deploy-worker-process.ts', import.meta.url)), stack.redis.url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await eventually(async () => (await api(stack.url, 'GET', `/api/deployments/${res.body.id}`)).body.status === 'running', 60_000, 50);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await api(stack.url, 'GET', `/api/deployments/${res.body.id}`)).body.status).toBe('running');

    // A worker that starts now waits for the dead one's lock to expire, then settles the record.
    stack.startWorker();
    const done = await settled(stack.url, res.body.id);
    expect(done).toMatchObject({ status: 'succeeded', error: null });
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'v3')).toBe(true);
    const env = await api(stack.url, 'GET', envPath('staging'));
    expect(env.body.current.id).toBe(res.body.id);
  }, 300_000);
});
