import { rm } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildRecord } from '../src/store/index.js';
import { BASE, REGISTRY, deleteRegistryRepo, gitHttpServer, makeRepo } from '../dev/builders.js';
import { ADMIN, api, eventually, removeDeployObjects, served, settled } from '../dev/deploy.js';
import { startSlipway, type Slipway } from './support/slipway.js';
import { SECRET, deliver, pushPayload } from '../dev/webhooks.js';

/**
 * The whole path with the real processes' wiring (startServe + startWorker): a signed push → a dedicated
 * build pushed to the registry → auto-deploy to staging (rules say `deploy: staging`) → staging serves the new
 * version → promote → protected production serves exactly that digest. Real Swarm, registry and git server.
 */

const run = Date.now().toString(36);
const REPO = `acme/deploy-e2e-${run}`;
const IMAGE = `${REGISTRY}/slipway-test/deploy-e2e-${run}`;
const STAGING_PORT = 18085;
const PRODUCTION_PORT = 18086;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let slipway: Slipway;
let serve: Slipway['serve'];
let git: { url: string; close(): Promise<void> };
let repoDir: string;
let cloneUrl: string;

const CONFIG = `
repository: ${REPO}
image: ${IMAGE}
builder: { isolation: dedicated, timeout: 5m }
environments:
  staging:
    service: deploy-e2e-${run}-staging
    replicas: 1
    ports: ["${STAGING_PORT}:8080"]
    update: { delay: 0s, monitor: 1s }
  production:
    service: deploy-e2e-${run}-production
    replicas: 2
    ports: ["${PRODUCTION_PORT}:8080"]
    update: { delay: 0s, monitor: 1s }
    promote_from: staging
    protected: true
rules:
  - name: edge
    source: branch
    match: main
    tags: [edge, "{sourceref}-{sha:7}"]
    deploy: staging
`;

function app(version: string): Record<string, string> {
  return {
    Dockerfile: [
      `FROM ${BASE}`,
      'COPY index.html /www/index.html',
      'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["sh", "-c", "echo | nc 127.0.0.1 8080 >/dev/null"]',
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      '',
    ].join('\n'),
    'index.html': `${version}\n`,
  };
}

beforeAll(async () => {
  slipway = await startSlipway({
    name: 'deploy-e2e',
    secret: SECRET,
    adminToken: ADMIN,
    env: { SLIPWAY_LOG_LEVEL: process.env.DEPLOY_E2E_LOG ?? 'silent' },
  });
  serve = slipway.serve;
  const repo = await makeRepo(app('hello v1'));
  repoDir = repo.dir;
  git = await gitHttpServer(path.dirname(repoDir));
  cloneUrl = `${git.url}/${path.basename(repoDir)}`;
  const put = await fetch(`${serve.url}/api/repos/${REPO}`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/yaml' }, body: CONFIG });
  expect(put.status, await put.text()).toBe(200);
}, 120_000);

afterAll(async () => {
  await slipway?.stop();
  await git?.close();
  await removeDeployObjects(docker, REPO);
  await deleteRegistryRepo(IMAGE);
  if (repoDir) await rm(repoDir, { recursive: true, force: true });
}, 120_000);

describe('push → build → staging → promote → production', () => {
  it('a push builds the image, staging rolls it out by itself, and a deployer promotes exactly that digest', async () => {
    const { git: gitCmd } = await import('../dev/builders.js');
    const sha = gitCmd(repoDir, 'rev-parse', 'HEAD');
    const payload = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha });
    (payload.repository as Record<string, unknown>).clone_url = cloneUrl;
    const delivered = await deliver(serve.url, { event: 'push', payload });
    expect(delivered.status).toBe(202);
    const buildId = delivered.body.builds[0] as string;

    // The build ends with its digest and the rollout it started.
    const build = await eventually(async () => {
      const r = (await api(serve.url, 'GET', `/api/builds/${buildId}`)).body as BuildRecord;
      return r.status !== 'queued' && r.status !== 'running' && r.deployments.length > 0 ? r : r.status === 'failed' ? r : null;
    }, 300_000);
    expect(build).toMatchObject({ status: 'succeeded', deploy: ['staging'] });
    expect(build.deployments).toHaveLength(1);

    const staging = await settled(serve.url, build.deployments[0]!);
    expect(staging).toMatchObject({ environment: 'staging', status: 'succeeded', trigger: 'build', by: 'slipway', build: buildId, digest: build.digest, image: IMAGE });
    expect(await eventually(async () => (await served(STAGING_PORT)) === 'hello v1', 60_000)).toBe(true);

    const tokens = await api(serve.url, 'POST', '/api/tokens', { json: { name: 'oncall', role: 'deployer' } });
    const promote = await api(serve.url, 'POST', `/api/repos/${REPO}/environments/production/promote`, { token: tokens.body.token });
    expect(promote.status).toBe(202);
    const production = await settled(serve.url, promote.body.id);
    expect(production).toMatchObject({ environment: 'production', status: 'succeeded', trigger: 'promote', by: 'oncall', digest: build.digest, build: buildId });
    expect(await eventually(async () => (await served(PRODUCTION_PORT)) === 'hello v1', 60_000)).toBe(true);
    const svc = await docker.getService(`deploy-e2e-${run}-production`).inspect();
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(`${IMAGE}@${build.digest}`);

    const audit = (await api(serve.url, 'GET', '/api/audit?limit=50')).body.entries as { actor: string; action: string; environment?: string; to: string | null; result: string }[];
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'slipway', action: 'environment.deploy', environment: 'staging', to: build.digest }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'slipway', action: 'rollout.build', environment: 'staging', to: build.digest, result: 'succeeded' }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'oncall', action: 'rollout.promote', environment: 'production', to: build.digest, result: 'succeeded' }));
  }, 400_000);
});
