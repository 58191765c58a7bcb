/**
 * `npm run demo [-- --once]`: the whole pipeline on this machine, narrated.
 * services up → sample app in a local git server → slipway up → repository registered →
 * signed push webhook → build (log streamed) → staging rollout → staging serves the new
 * version → promotion → production serves it → a push with a broken health check → automatic
 * rollback. Then it prints the dashboard URL and a token and stays up until Ctrl-C
 * (`--once`: exits, 0 only when every step did what it should).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { parseSourceAllow } from '../src/auth/index.js';
import { loadConfig, type Config } from '../src/config.js';
import { dockerClient } from '../src/main.js';
import { startUp, type UpHandle } from '../src/cli/up.js';
import type { BuildRecord, DeploymentRecord } from '../src/store/records.js';
import { DemoClient } from './api-client.js';
import { removeDeployments } from './cleanup.js';
import { startGitServer, type GitServer } from './git-server.js';
import { Narrator, waitFor } from './narrator.js';
import { answersVersion, appFiles, describeAnswer, SampleRepo } from './sample-app.js';
import { deliver, pushPayload } from './webhook.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const REPO = 'demo/hello';
const REGISTRY = '127.0.0.1:5000';
/** Demo ports (18180-18199 are the demo's): environments, slipway, the git server. */
const PORTS = { staging: 18180, production: 18181, slipway: 18190, git: 18191 };
const BUILD_TIMEOUT_MS = 5 * 60_000;
const ROLLOUT_TIMEOUT_MS = 4 * 60_000;

const TERMINAL_BUILD = new Set(['succeeded', 'failed', 'cancelled', 'superseded']);
const TERMINAL_ROLLOUT = new Set(['succeeded', 'rolled_back', 'failed']);

/** The sample repository's slipway config: one rule that builds main and deploys it to staging. */
export function demoConfig() {
  return {
    repository: REPO,
    image: `${REGISTRY}/${REPO}`,
    environments: {
      staging: { service: 'slipway-demo-hello-staging', replicas: 2, ports: [`${PORTS.staging}:8080`] },
      production: {
        service: 'slipway-demo-hello',
        replicas: 2,
        ports: [`${PORTS.production}:8080`],
        promote_from: 'staging',
        protected: true,
      },
    },
    rules: [{ name: 'edge', source: 'branch', match: 'main', tags: ['edge', '{sourceref}-{sha:7}'], cache: true, deploy: 'staging' }],
  };
}

class DemoFailure extends Error {}
class Interrupted extends Error {}

/** Resolves on the first Ctrl-C (or SIGTERM); the demo then stops and cleans up whatever step it is in. */
const stopRequested = new Promise<void>((resolveSignal) => {
  process.once('SIGINT', () => resolveSignal());
  process.once('SIGTERM', () => resolveSignal());
});

async function runServicesScript(n: Narrator): Promise<void> {
  const script = join(ROOT, 'infra/dev/services.sh');
  await new Promise<void>((ok, fail) => {
    const child = spawn('bash', [script, 'up'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) n.info(line);
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.once('error', fail);
    child.once('close', (code) => (code === 0 ? ok() : fail(new DemoFailure(`infra/dev/services.sh up exited ${code}`))));
  });
}

/** Fetches a URL's body, or undefined while it does not answer 200. */
async function body(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return res.ok ? (await res.text()).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The body `url` serves while it answers as `version`, else undefined. */
async function servedVersion(url: string, version: string): Promise<string | undefined> {
  const served = await body(url);
  return answersVersion(served, version) ? served : undefined;
}

async function main(argv: string[]): Promise<number> {
  const once = argv.includes('--once');
  const n = new Narrator(9);
  const state = join(ROOT, '.slipway', 'demo');
  const cleanups: (() => Promise<unknown>)[] = [];
  const docker = dockerClient(undefined);
  let up: UpHandle | undefined;
  let git: GitServer | undefined;

  const shutdown = async () => {
    for (const c of cleanups.reverse()) await c().catch((err: Error) => n.info(`cleanup: ${err.message}`));
  };

  n.title('slipway demo: push → build → staging → promote → production → rollback');
  const interrupted = stopRequested.then(() => {
    throw new Interrupted();
  });
  // Every step below awaits through this, so Ctrl-C ends the demo at once, whatever it is doing.
  const step = <T>(work: Promise<T>): Promise<T> => {
    work.catch(() => undefined); // once interrupted, a step's own later failure is expected, not unhandled
    return Promise.race([work, interrupted]);
  };
  interrupted.catch(() => undefined);
  try {
    n.next('Services: Docker Engine + Swarm, the registry on 127.0.0.1:5000, Redis, and the Debian and Node 20 base images (made here the first time: a minute or two)');
    await step(runServicesScript(n));

    // A fresh state each run, and no leftovers of an earlier run in the Swarm.
    await rm(state, { recursive: true, force: true });
    await mkdir(state, { recursive: true });
    const removed = await removeDeployments(docker, REPO, `${REGISTRY}/${REPO}`);
    if (removed) n.info(`removed ${removed} service(s) an earlier demo left running`);

    n.next(`A sample app, ${REPO}, in a local git server`);
    git = await startGitServer({ root: join(state, 'git'), port: PORTS.git });
    cleanups.push(() => git!.close());
    const repo = await SampleRepo.create(state, REPO);
    const cloneUrl = `${git.url}/${REPO}.git`;
    const first = await repo.commit(await appFiles({ version: 'v1', healthy: true }), 'hello v1');
    n.ok(`${cloneUrl} at ${first.sha.slice(0, 7)} "hello v1": a TypeScript service (fastify, pino, zod; npm ci and tsc in a build stage, HEALTHCHECK on /healthz)`);

    n.next('slipway up (API, dashboard and workers in one process, with a private Redis)');
    const base: Config = loadConfig();
    const config: Config = {
      ...base,
      redisUrl: undefined,
      port: PORTS.slipway,
      host: '127.0.0.1',
      webhookSecret: undefined,
      adminToken: undefined,
      dataDir: join(state, 'slipway'),
      logLevel: 'info',
      // The demo's git server is on loopback: allowed explicitly, besides GitHub repositories' own URLs.
      sourceAllow: parseSourceAllow(`github.com,http://127.0.0.1:${PORTS.git}/`),
    };
    const logFile = join(state, 'slipway.log');
    const log = pino({ level: 'info', base: { service: 'slipway' } }, pino.destination({ dest: logFile, sync: false, mkdir: true }));
    up = await step(startUp(config, { log }));
    cleanups.push(() => up!.close());
    const api = new DemoClient(up.url, up.adminToken);
    n.ok(`${up.url} (its log: ${logFile})`);

    n.next('Register the repository: rules, staging and production');
    const doc = demoConfig();
    await api.call('PUT', `/api/repos/${REPO}`, stringify(doc), 'application/yaml');
    for (const line of stringify(doc).trimEnd().split('\n')) n.log(line);

    const pushAndBuild = async (commit: typeof first, label: string): Promise<BuildRecord> => {
      const delivery = await deliver(up!.url, up!.webhookSecret, 'push', pushPayload({ repo: REPO, cloneUrl, commit, pusher: 'dev' }));
      if (delivery.status !== 202) throw new DemoFailure(`the push webhook answered ${delivery.status}: ${JSON.stringify(delivery.body)}`);
      const ids = (delivery.body as { builds?: string[] }).builds ?? [];
      if (ids.length !== 1) throw new DemoFailure(`expected one build for ${label}, slipway queued ${ids.length}: ${JSON.stringify(delivery.body)}`);
      n.ok(`signed push webhook accepted (202): build ${ids[0]}`);
      return followBuild(api, ids[0]!, n);
    };

    n.next('git push (v1): GitHub would now send a signed push webhook; here it is');
    n.info('the first build downloads the app\'s npm dependencies inside its own dedicated engine (the egress policy lets it reach the registry, nothing private); later builds reuse the repository\'s cache');
    const v1 = await step(pushAndBuild(first, 'v1'));
    n.ok(`built and pushed ${v1.image}@${v1.digest} tags ${v1.tags.join(', ')}`);

    n.next('Staging rollout (the edge rule deploys to staging)');
    const stagingV1 = await step(followRollout(api, v1, 'staging', n));
    if (stagingV1.status !== 'succeeded') throw new DemoFailure(`the staging rollout ended ${stagingV1.status}: ${stagingV1.error}`);
    const stagingUrl = `http://127.0.0.1:${PORTS.staging}/`;
    const servedV1 = await step(waitFor('staging to serve v1', () => servedVersion(stagingUrl, 'v1'), 60_000));
    n.ok(`${stagingUrl} answers: ${describeAnswer(servedV1)}`);

    n.next('Promote to production: exactly the digest staging runs');
    const promoted = await api.call<DeploymentRecord>('POST', `/api/repos/${REPO}/environments/production/promote`, {});
    n.info(`POST /api/repos/${REPO}/environments/production/promote → ${promoted.status}, revision ${promoted.body.revision}, ${promoted.body.digest}`);
    const prod = await step(followDeployment(api, promoted.body.id, n));
    if (prod.status !== 'succeeded') throw new DemoFailure(`the production rollout ended ${prod.status}: ${prod.error}`);
    if (prod.digest !== v1.digest) throw new DemoFailure(`production runs ${prod.digest}, staging ran ${v1.digest}`);
    const prodUrl = `http://127.0.0.1:${PORTS.production}/`;
    const servedProd = await step(waitFor('production to serve v1', () => servedVersion(prodUrl, 'v1'), 60_000));
    n.ok(`${prodUrl} answers: ${describeAnswer(servedProd)}`);

    n.next('git push (v2) with a broken health check: /healthz is gone, so no v2 task ever becomes healthy');
    const second = await repo.commit(await appFiles({ version: 'v2', healthy: false }), 'hello v2 (forgot /healthz)');
    const v2 = await step(pushAndBuild(second, 'v2'));
    n.ok(`built and pushed ${v2.image}@${v2.digest}`);
    const stagingV2 = await step(followRollout(api, v2, 'staging', n));
    if (stagingV2.status !== 'rolled_back' && stagingV2.status !== 'failed') {
      throw new DemoFailure(`the broken v2 rollout ended ${stagingV2.status}; it should have been rolled back`);
    }
    const env = await api.get<{ current: DeploymentRecord | null }>(`/api/repos/${REPO}/environments/staging`);
    if (env.current?.digest !== v1.digest) throw new DemoFailure(`after the rollback staging's current revision is ${env.current?.digest}, not v1's ${v1.digest}`);
    const stillV1 = await step(waitFor('staging to serve v1 again', () => servedVersion(stagingUrl, 'v1'), 60_000));
    n.ok(`automatic rollback: staging ${stagingV2.status.replace('_', ' ')}${stagingV2.error ? ` (${stagingV2.error})` : ''}; ${stagingUrl} still answers: ${describeAnswer(stillV1)}`);

    n.next('Done: the dashboard');
    n.info(`Dashboard:  ${up.url}/`);
    n.info(`Token:      ${up.adminToken}   (admin; paste it on the sign-in page)`);
    n.info(`Staging:    ${stagingUrl}   Production: ${prodUrl}`);
    n.info(`Webhook:    POST ${up.url}/webhooks/github (secret ${up.webhookSecret})`);
    if (once) {
      n.ok('--once: every step did what it should; cleaning up');
      return 0;
    }
    n.info('slipway keeps running; press Ctrl-C to stop it and remove the demo services.');
    await stopRequested;
    return 0;
  } catch (err) {
    if (err instanceof Interrupted) {
      n.info('interrupted');
      return 130;
    }
    n.fail(err instanceof DemoFailure ? err.message : (err as Error).stack ?? String(err));
    if (up) n.info(`slipway's log: ${join(state, 'slipway.log')}`);
    return 1;
  } finally {
    n.info('stopping the demo…');
    await shutdown();
    await removeDeployments(docker, REPO, `${REGISTRY}/${REPO}`).catch((err: Error) => n.info(`cleanup: ${err.message}`));
  }
}

/** Streams the build's log while it runs; answers the finished record. */
async function followBuild(api: DemoClient, id: string, n: Narrator): Promise<BuildRecord> {
  const stop = new AbortController();
  const streaming = api
    .follow(`/api/builds/${id}/log`, (event, data) => {
      if (event === 'end' || event === 'done') return;
      let text = data;
      try {
        const v = JSON.parse(data) as unknown;
        if (typeof v === 'string') text = v;
        else if (v && typeof v === 'object') {
          const o = v as Record<string, unknown>;
          text = String(o.line ?? o.text ?? o.message ?? (o.step ? `▸ ${o.step}` : o.name ? `▸ ${o.name}` : data));
        }
      } catch {
        // plain text line
      }
      n.log(text);
    }, stop.signal)
    .catch((err: Error) => n.info(`(log stream: ${err.message})`));
  try {
    const build = await waitFor(`build ${id} to finish`, async () => {
      const b = await api.get<BuildRecord>(`/api/builds/${id}`);
      return TERMINAL_BUILD.has(b.status) ? b : undefined;
    }, BUILD_TIMEOUT_MS, 1000);
    // Let the log stream drain its last lines (it ends by itself when the build ends).
    await Promise.race([streaming, new Promise((r) => setTimeout(r, 3000))]);
    if (build.status !== 'succeeded') throw new DemoFailure(`build ${id} ${build.status}: ${build.error ?? 'no error recorded'}`);
    return build;
  } finally {
    stop.abort();
  }
}

/** Waits for the rollout a build started in `environment`, then follows it to its end. */
async function followRollout(api: DemoClient, build: BuildRecord, environment: string, n: Narrator): Promise<DeploymentRecord> {
  const id = await waitFor(`build ${build.id} to start its ${environment} rollout`, async () => {
    const b = await api.get<BuildRecord>(`/api/builds/${build.id}`);
    for (const d of b.deployments) {
      const rec = await api.get<DeploymentRecord>(`/api/deployments/${d}`);
      if (rec.environment === environment) return d;
    }
    return undefined;
  }, 60_000, 1000);
  return followDeployment(api, id, n);
}

async function followDeployment(api: DemoClient, id: string, n: Narrator): Promise<DeploymentRecord> {
  let last = '';
  return waitFor(`rollout ${id} to finish`, async () => {
    const d = await api.get<DeploymentRecord>(`/api/deployments/${id}`);
    const line = `${d.environment} revision ${d.revision}: ${d.status.replace('_', ' ')}${d.error ? ` (${d.error})` : ''}`;
    if (line !== last) n.info(line);
    last = line;
    return TERMINAL_ROLLOUT.has(d.status) ? d : undefined;
  }, ROLLOUT_TIMEOUT_MS, 1000);
}

process.exitCode = await main(process.argv.slice(2));
// Anything still holding the event loop (keep-alive sockets) must not keep a finished demo alive.
setTimeout(() => process.exit(process.exitCode), 2000).unref();
