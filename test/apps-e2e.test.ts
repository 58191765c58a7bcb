import { rm } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildRecord } from '../src/store/index.js';
import { REGISTRY, deleteRegistryRepo, gitHttpServer, makeRepo } from '../dev/builders.js';
import { leftovers } from './support/builders.js';
import { ADMIN, api, eventually, removeDeployObjects, settled } from '../dev/deploy.js';
import { appFiles, type AppName } from './fixtures/apps/index.js';
import { startSlipway, type Slipway } from './support/slipway.js';
import { SECRET, deliver, pushPayload } from '../dev/webhooks.js';

/**
 * Real applications through slipway's default isolation: a signed push of each fixture app
 * (test/fixtures/apps) builds it in a dedicated engine whose RUN steps download real
 * dependencies (npm ci from the npm registry, apt-get from Debian's mirror) under the default
 * egress policy, pushes it, rolls it out to staging, and staging answers on its port.
 */

const run = Date.now().toString(36);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let slipway: Slipway;
let gitServer: { url: string; close(): Promise<void> } | undefined;
const dirs: string[] = [];

interface Case {
  app: AppName;
  port: number;
  /** Rule fields beyond name, source, match, tags and deploy. */
  rule: string;
}

const CASES: Case[] = [
  { app: 'node-api', port: 18087, rule: 'target: runtime, cache: true, build_args: { APP_VERSION: "{sourceref}-{sha:7}" }' },
  { app: 'debian-tool', port: 18088, rule: 'cache: true, build_args: { APP_VERSION: "{sourceref}-{sha:7}" }' },
];

const repoOf = (c: Case) => `acme/${c.app}-${run}`;
const imageOf = (c: Case) => `${REGISTRY}/slipway-test/${c.app}-${run}`;

function configOf(c: Case): string {
  return `
repository: ${repoOf(c)}
image: ${imageOf(c)}
builder: { timeout: 15m }
environments:
  staging:
    service: ${c.app}-${run}-staging
    replicas: 1
    ports: ["${c.port}:8080"]
    update: { delay: 0s, monitor: 2s }
rules:
  - { name: edge, source: branch, match: main, tags: [edge], deploy: staging, ${c.rule} }
`;
}

async function get(port: number, route: string): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${route}`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.text()).trim() };
  } catch {
    return null;
  }
}

beforeAll(async () => {
  slipway = await startSlipway({
    name: 'apps',
    secret: SECRET,
    adminToken: ADMIN,
    // Engines stop with their builds here, so each case can check that nothing is left behind
    // (keeping a repository's engine for its next build is tested in builders-features).
    env: { SLIPWAY_LOG_LEVEL: process.env.APPS_E2E_LOG ?? 'silent', SLIPWAY_BUILDER_KEEP: '0s' },
  });
  for (const c of CASES) {
    const res = await fetch(`${slipway.serve.url}/api/repos/${repoOf(c)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/yaml' },
      body: configOf(c),
    });
    expect(res.status, await res.text()).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await slipway?.stop();
  await gitServer?.close();
  for (const c of CASES) {
    await removeDeployObjects(docker, repoOf(c));
    await deleteRegistryRepo(imageOf(c));
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 180_000);

describe('real applications build, deploy and answer through a dedicated engine', () => {
  for (const c of CASES) {
    it(`${c.app}: push → dedicated build with real downloads → staging answers on ${c.port}`, { timeout: 900_000 }, async () => {
      const { dir, sha } = await makeRepo(await appFiles(c.app));
      dirs.push(dir);
      gitServer ??= await gitHttpServer(path.dirname(dir));
      const payload = pushPayload({ repo: repoOf(c), ref: 'refs/heads/main', sha });
      (payload.repository as Record<string, unknown>).clone_url = `${gitServer.url}/${path.basename(dir)}`;
      const delivered = await deliver(slipway.serve.url, { event: 'push', payload });
      expect(delivered.status).toBe(202);
      const id = delivered.body.builds[0] as string;

      const build = await eventually(async () => {
        const r = (await api(slipway.serve.url, 'GET', `/api/builds/${id}`)).body as BuildRecord;
        return ['succeeded', 'failed', 'cancelled'].includes(r.status) && (r.status !== 'succeeded' || r.deployments.length > 0) ? r : null;
      }, 840_000, 1000);
      const log = await (await fetch(`${slipway.serve.url}/api/builds/${id}/log`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
      expect(build.status, `${build.error}\n${log.split('\n').slice(-40).join('\n')}`).toBe('succeeded');
      expect(log).toMatch(/network: egress policy public on slwb\d+/);
      expect(log).toMatch(c.app === 'node-api' ? /npm ci/ : /apt-get/);

      const staging = await settled(slipway.serve.url, build.deployments[0]!);
      expect(staging).toMatchObject({ environment: 'staging', status: 'succeeded', digest: build.digest });
      const health = await eventually(async () => {
        const r = await get(c.port, '/healthz');
        return r?.status === 200 ? r : null;
      }, 120_000);
      expect(health.body).toBe('ok');
      const home = await get(c.port, '/');
      // The version comes from the rule's build_args, rendered from the push.
      expect(home?.body).toContain(`main-${sha.slice(0, 7)}`);
      expect(home?.body).toContain(c.app);
      expect(await leftovers(slipway.dataDir)).toEqual([]);
    });
  }
});
