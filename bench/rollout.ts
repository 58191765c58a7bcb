/**
 * `npm run bench:rollout`: five consecutive promotions of a 4-replica production service (behind the
 * HAProxy entry proxy, under HTTP load from another process), side by side in the same run with
 * `docker service update --image` of an identical service (same spec, same update settings, its own
 * proxy, same load), both started at the same moment so that both see the same machine. Then one bad image (health check fails) is rolled out to production under load.
 * Prints one JSON line: {slipway_s, docker_cli_s, ratio, requests, failed}
 *   slipway_s     mean seconds from POST …/promote to the deployment record ending `succeeded`
 *   docker_cli_s  mean seconds of `docker service update --detach=false --image …` (until it converged)
 *   ratio         slipway_s / docker_cli_s
 *   requests      requests sent through slipway's proxy during the promotions and the bad image's rollback
 *   failed        of those, failed ones (connection errors, timeouts, non-200)
 * Progress goes to stderr. Uses the update defaults: parallelism 1, delay 1s, start-first, monitor 5s.
 */
import { execFile } from 'node:child_process';
import Docker from 'dockerode';
import { promisify } from 'node:util';
import { SwarmTarget } from '../src/deploy/index.js';
import { environmentSpecs, validateConfig } from '../src/rules/index.js';
import { buildTestImage, removeTestImages, TEST_REPOSITORY } from '../dev/deploy-images.js';
import { api, removeDeployObjects, settled, startDeployStack, startLoad } from '../dev/deploy.js';

const run = promisify(execFile);
const REPO = 'slipway-bench/rollout';
const ROUNDS = 5;
const PROD_PORT = 18082;
const CLI_PORT = 18083;
const STAGING_PORT = 18084;
const log = (msg: string) => process.stderr.write(`${msg}\n`);

const environments = {
  staging: { service: 'slipway-bench-staging', replicas: 1, ports: [`${STAGING_PORT}:8080`], update: { delay: '0s', monitor: '1s' } },
  production: { service: 'slipway-bench-production', replicas: 4, ports: [`${PROD_PORT}:8080`], promote_from: 'staging' },
};
// The baseline: the same environment as production under another name and port, driven by the docker CLI.
const cliEnv = environmentSpecs(
  validateConfig({ repository: REPO, image: TEST_REPOSITORY, environments: { 'cli-baseline': { service: 'slipway-bench-cli', replicas: 4, ports: [`${CLI_PORT}:8080`] } } }),
)['cli-baseline']!;

const images = await Promise.all([buildTestImage('bench-a'), buildTestImage('bench-b'), buildTestImage('bench-bad', { broken: true })]);
const [a, b, bad] = images as [typeof images[0], typeof images[0], typeof images[0]];
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
// The worker polls as in production (the harness' test settings poll faster).
const stack = await startDeployStack({ pollMs: 100, target: new SwarmTarget({ docker }) });
const target = new SwarmTarget({ docker });
let requests = 0;
let failed = 0;
const slipwayTimes: number[] = [];
const cliTimes: number[] = [];

async function promoteTimed(): Promise<number> {
  const requestedAt = Date.now();
  const t0 = performance.now();
  const res = await api(stack.url, 'POST', `/api/repos/${REPO}/environments/production/promote`);
  if (res.status !== 202) throw new Error(`promote answered ${res.status}: ${JSON.stringify(res.body)}`);
  const done = await settled(stack.url, res.body.id as string, 240_000, 50);
  const seconds = (performance.now() - t0) / 1000;
  if (done.status !== 'succeeded') throw new Error(`promotion ended ${done.status}: ${done.error}`);
  log(`  slipway: the worker started the rollout ${((Date.parse(done.startedAt) - requestedAt) / 1000).toFixed(2)} s after the request`);
  return seconds;
}

async function cliUpdateTimed(imageRef: string): Promise<number> {
  const t0 = performance.now();
  await run('docker', ['service', 'update', '--detach=false', '--quiet', '--image', imageRef, cliEnv.service]);
  return (performance.now() - t0) / 1000;
}

async function underLoad<T>(port: number, count: boolean, fn: () => Promise<T>): Promise<T> {
  const load = await startLoad(port);
  try {
    return await fn();
  } finally {
    const r = await load.stop();
    if (count) {
      requests += r.requests;
      failed += r.failed;
    }
    log(`  load on ${port}: ${JSON.stringify({ requests: r.requests, failed: r.failed, versions: r.versions })}`);
  }
}

try {
  await removeDeployObjects(stack.docker, REPO);
  const put = await api(stack.url, 'PUT', `/api/repos/${REPO}`, { json: { repository: REPO, image: TEST_REPOSITORY, environments } });
  if (put.status !== 200) throw new Error(`config: ${JSON.stringify(put.body)}`);

  // Both production services start on image a.
  const first = await api(stack.url, 'POST', `/api/repos/${REPO}/environments/staging/deploy`, { json: { digest: a.digest } });
  await settled(stack.url, first.body.id);
  await promoteTimed();
  const cliReq = { repo: REPO, environment: 'cli-baseline', config: cliEnv, imageRef: `${TEST_REPOSITORY}@${a.digest}`, deploymentId: 'bench-cli', revision: 1, since: Date.now() };
  await target.apply(cliReq);
  await target.settle(cliReq, Date.now() + 180_000);

  for (let i = 0; i < ROUNDS; i++) {
    const next = i % 2 === 0 ? b : a;
    const staged = await api(stack.url, 'POST', `/api/repos/${REPO}/environments/staging/deploy`, { json: { digest: next.digest } });
    if ((await settled(stack.url, staged.body.id)).status !== 'succeeded') throw new Error('staging rollout failed');
    // Both rollouts run at the same time, each under its own load, so both see the same machine (other work on
    // the host slows both alike); neither waits for the other.
    const [slipwayS, cliS] = await Promise.all([
      underLoad(PROD_PORT, true, promoteTimed),
      underLoad(CLI_PORT, false, () => cliUpdateTimed(`${TEST_REPOSITORY}@${next.digest}`)),
    ]);
    slipwayTimes.push(slipwayS);
    cliTimes.push(cliS);
    log(`round ${i + 1}: slipway ${slipwayTimes.at(-1)!.toFixed(2)} s, docker CLI ${cliTimes.at(-1)!.toFixed(2)} s`);
  }

  // A bad image must roll back by itself without a failed request.
  await underLoad(PROD_PORT, true, async () => {
    const res = await api(stack.url, 'POST', `/api/repos/${REPO}/environments/production/deploy`, { json: { digest: bad.digest } });
    const done = await settled(stack.url, res.body.id);
    log(`bad image: ${done.status}: ${done.error}`);
    if (done.status !== 'rolled_back') throw new Error(`bad image ended ${done.status}`);
  });

  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const slipway_s = Number(mean(slipwayTimes).toFixed(3));
  const docker_cli_s = Number(mean(cliTimes).toFixed(3));
  process.stdout.write(`${JSON.stringify({ slipway_s, docker_cli_s, ratio: Number((slipway_s / docker_cli_s).toFixed(3)), requests, failed })}\n`);
} finally {
  await stack.close();
  await removeDeployObjects(stack.docker, REPO);
  await target.remove(REPO, cliEnv).catch(() => undefined);
  await removeTestImages(images);
}
