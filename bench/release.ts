/**
 * `npm run bench:release`: promotions of a release of two services (web behind the entry proxy and a
 * worker, 4 replicas each) to production under HTTP load from another process, side by side in the
 * same run with `docker stack deploy --detach=false` of the same two services (same images, health
 * checks, replicas and update settings) as a stack; both start at the same moment, so both see the
 * same machine. Then a bad release (its worker never becomes healthy) against a bad image rolled out
 * to a single-service environment that runs the same worker, also at the same moment.
 * Prints one JSON line:
 *   slipway_s          mean seconds from POST …/promote to the release ending `succeeded`
 *   stack_deploy_s     mean seconds of `docker stack deploy --detach=false` (until both services converged)
 *   ratio              slipway_s / stack_deploy_s
 *   requests, failed   requests through production's proxy during the promotions and the bad release, and the failed ones
 *   bad_release_s      seconds from the bad release's request until it ended `rolled_back` with both services restored
 *   single_rollback_s  seconds from the bad image's request until the single service ended `rolled_back`
 *   rollback_ratio     bad_release_s / single_rollback_s
 *   stack_bad          what `docker stack deploy` of the same bad release left: its exit code and each service's image
 * Progress goes to stderr. Update settings are the defaults (parallelism 1, delay 1s, start-first, monitor 5s).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { SwarmTarget } from '../src/deploy/index.js';
import { buildTestImage, removeTestImages, TEST_REPOSITORY, type TestImage } from '../dev/deploy-images.js';
import { api, recordBuild, removeDeployObjects, settled, startDeployStack, startLoad } from '../dev/deploy.js';

const run = promisify(execFile);
const REPO = 'slipway-bench/release';
const ROUNDS = 3;
const STAGING_PORT = 18085;
const PROD_PORT = 18086;
const STACK = 'slwb-rel-stack';
const log = (msg: string) => process.stderr.write(`${msg}\n`);

// The worker answers on its own port; its health check refuses a page that says `broken`.
const WORKER_COMMAND = ['httpd', '-f', '-p', '8081', '-h', '/www'];
const WORKER_HEALTH = ['CMD-SHELL', '! grep -q broken /www/index.html && echo | nc 127.0.0.1 8081 >/dev/null'];
const worker = { build: 'app', command: WORKER_COMMAND, health: { cmd: WORKER_HEALTH, interval: '1s', retries: 2 } };
const CONFIG = {
  repository: REPO,
  image: TEST_REPOSITORY,
  environments: {
    staging: { service: 'slwb-rel-staging', replicas: 1, update: { delay: '0s', monitor: '1s' }, services: { web: { build: 'app', ports: [`${STAGING_PORT}:8080`] }, worker } },
    production: { service: 'slwb-rel-prod', replicas: 4, promote_from: 'staging', services: { web: { build: 'app', ports: [`${PROD_PORT}:8080`] }, worker } },
    // The bad release's baseline: production's worker alone, as a single-service environment.
    single: { service: 'slwb-rel-single', replicas: 4, command: WORKER_COMMAND, health: { cmd: WORKER_HEALTH, interval: '1s', retries: 2 } },
  },
  rules: [{ name: 'app', source: 'branch', match: 'main', tags: ['edge'] }],
};

/** The same two services as a compose stack, with slipway's update, rollback, restart and health settings. */
function stackFile(image: TestImage): string {
  const ref = `${image.repository}@${image.digest}`;
  const update = 'parallelism: 1, delay: 1s, order: start-first, monitor: 5s';
  const deploy = (endpoint: string) =>
    `    deploy: { replicas: 4, endpoint_mode: ${endpoint}, restart_policy: { condition: any, delay: 1s }, update_config: { ${update}, failure_action: rollback }, rollback_config: { ${update}, failure_action: pause } }`;
  return [
    'version: "3.8"',
    'services:',
    '  web:',
    `    image: ${ref}`,
    '    init: true',
    '    stop_grace_period: 10s',
    deploy('dnsrr'),
    '  worker:',
    `    image: ${ref}`,
    `    command: ${JSON.stringify(WORKER_COMMAND)}`,
    '    init: true',
    '    stop_grace_period: 10s',
    `    healthcheck: { test: ${JSON.stringify(WORKER_HEALTH)}, interval: 1s, timeout: 2s, retries: 2 }`,
    deploy('vip'),
    '',
  ].join('\n');
}

const [a, b, bad] = await Promise.all([buildTestImage('rel-a'), buildTestImage('rel-b'), buildTestImage('rel-broken')]);
const images = [a!, b!, bad!];
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
// The worker polls as in production (the harness' test settings poll faster).
const stack = await startDeployStack({ pollMs: 100, target: new SwarmTarget({ docker }) });
const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-release-'));
const token = await stack.token('bench-ops', 'deployer');
let requests = 0;
let failed = 0;

const envPath = (env: string) => `/api/repos/${REPO}/environments/${env}`;

async function request(env: string, action: 'deploy' | 'promote', json?: unknown): Promise<string> {
  const res = await api(stack.url, 'POST', `${envPath(env)}/${action}`, { token, ...(json ? { json } : {}) });
  if (res.status !== 202) throw new Error(`${action} ${env} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/** Seconds from the request to the rollout's end, and how it ended. */
async function timed(env: string, action: 'deploy' | 'promote', json?: unknown): Promise<{ seconds: number; done: any }> {
  const t0 = performance.now();
  const done = await settled(stack.url, await request(env, action, json), 300_000, 50);
  return { seconds: (performance.now() - t0) / 1000, done };
}

async function stackDeploy(image: TestImage): Promise<{ seconds: number; code: number }> {
  const file = join(dir, 'stack.yml');
  await writeFile(file, stackFile(image));
  const t0 = performance.now();
  const code = await run('docker', ['stack', 'deploy', '--detach=false', '--quiet', '-c', file, STACK]).then(
    () => 0,
    (err: { code?: number }) => err.code ?? 1,
  );
  return { seconds: (performance.now() - t0) / 1000, code };
}

async function stackImages(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of ['web', 'worker']) {
    const svc = await docker.getService(`${STACK}_${name}`).inspect();
    const image: string = svc.Spec.TaskTemplate.ContainerSpec.Image;
    out[name] = image === `${a!.repository}@${a!.digest}` ? 'a' : image === `${b!.repository}@${b!.digest}` ? 'b' : image.includes(bad!.digest) ? 'bad' : image;
  }
  return out;
}

async function underLoad<T>(fn: () => Promise<T>): Promise<T> {
  const load = await startLoad(PROD_PORT);
  try {
    return await fn();
  } finally {
    const r = await load.stop();
    requests += r.requests;
    failed += r.failed;
    log(`  load on ${PROD_PORT}: ${JSON.stringify({ requests: r.requests, failed: r.failed, versions: r.versions })}`);
  }
}

async function stage(image: TestImage): Promise<void> {
  const build = await recordBuild(stack.client, REPO, image);
  const { done } = await timed('staging', 'deploy', { build: build.id });
  if (done.status !== 'succeeded') throw new Error(`staging ended ${done.status}: ${done.error}`);
}

async function removeStack(): Promise<void> {
  await run('docker', ['stack', 'rm', STACK]).catch(() => undefined);
  for (let i = 0; i < 60 && (await docker.listNetworks({ filters: { label: [`com.docker.stack.namespace=${STACK}`] } })).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 500));
  }
}

try {
  await removeDeployObjects(stack.docker, REPO);
  await removeStack();
  const put = await api(stack.url, 'PUT', `/api/repos/${REPO}`, { json: CONFIG });
  if (put.status !== 200) throw new Error(`config: ${JSON.stringify(put.body)}`);

  log('setting up: staging, production and the stack on image a');
  await stage(a!);
  const [first, stackFirst] = await Promise.all([timed('production', 'promote'), stackDeploy(a!)]);
  if (first.done.status !== 'succeeded' || stackFirst.code !== 0) throw new Error(`setup failed: ${first.done.error ?? ''} stack exit ${stackFirst.code}`);
  const single = await timed('single', 'deploy', { digest: a!.digest });
  if (single.done.status !== 'succeeded') throw new Error(`single: ${single.done.error}`);

  const slipwayTimes: number[] = [];
  const stackTimes: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const next = i % 2 === 0 ? b! : a!;
    await stage(next);
    const [promoted, stacked] = await Promise.all([underLoad(() => timed('production', 'promote')), stackDeploy(next)]);
    if (promoted.done.status !== 'succeeded') throw new Error(`promotion ended ${promoted.done.status}: ${promoted.done.error}`);
    if (stacked.code !== 0) throw new Error(`docker stack deploy exited ${stacked.code}`);
    slipwayTimes.push(promoted.seconds);
    stackTimes.push(stacked.seconds);
    log(`round ${i + 1}: slipway ${promoted.seconds.toFixed(2)} s, docker stack deploy ${stacked.seconds.toFixed(2)} s`);
  }

  // The bad release: its worker never becomes healthy. Production must end on the release before it.
  log('bad release against the same bad worker alone');
  const badBuild = await recordBuild(stack.client, REPO, bad!);
  const [release, alone] = await Promise.all([
    underLoad(() => timed('production', 'deploy', { build: badBuild.id })),
    timed('single', 'deploy', { digest: bad!.digest }),
  ]);
  log(`  release: ${release.done.status}: ${release.done.error}`);
  log(`  single service: ${alone.done.status}: ${alone.done.error}`);
  if (release.done.status !== 'rolled_back' || alone.done.status !== 'rolled_back') throw new Error('a bad rollout did not end rolled_back');
  const prod = await api(stack.url, 'GET', envPath('production'));
  const restored = prod.body.services.every((s: { digest: string | null }) => s.digest === a!.digest);
  if (!restored) throw new Error(`production did not end on the release before the bad one: ${JSON.stringify(prod.body.services)}`);

  log('the same bad release through docker stack deploy');
  const stackBad = await stackDeploy(bad!);
  const stack_bad = { exit_code: stackBad.code, seconds: Number(stackBad.seconds.toFixed(3)), ...(await stackImages()) };

  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const slipway_s = Number(mean(slipwayTimes).toFixed(3));
  const stack_deploy_s = Number(mean(stackTimes).toFixed(3));
  const bad_release_s = Number(release.seconds.toFixed(3));
  const single_rollback_s = Number(alone.seconds.toFixed(3));
  process.stdout.write(
    `${JSON.stringify({
      slipway_s,
      stack_deploy_s,
      ratio: Number((slipway_s / stack_deploy_s).toFixed(3)),
      requests,
      failed,
      bad_release_s,
      single_rollback_s,
      rollback_ratio: Number((bad_release_s / single_rollback_s).toFixed(3)),
      stack_bad,
    })}\n`,
  );
} finally {
  await stack.close();
  await removeDeployObjects(stack.docker, REPO);
  await removeStack();
  await removeTestImages(images);
  await rm(dir, { recursive: true, force: true });
}
