import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildRecord } from '../../src/store/index.js';
import { REGISTRY } from '../../dev/builders.js';
import { eventually, removeDeployObjects } from '../../dev/deploy.js';
import { startSlipway, type Slipway } from '../support/slipway.js';
import { ADMIN, SECRET, api, deliver, pushPayload } from '../../dev/webhooks.js';

/**
 * Per-repository access through a real slipway: a token scoped to `acme/*` reads and writes its own
 * repositories and gets 404 for everything of another's; revoked and expired tokens fail at once.
 */

const run = Date.now().toString(36);
const OURS = `acme/own-${run}`;
const THEIRS = `rival/app-${run}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let slipway: Slipway;
let url: string;
let scoped: string;
let scopedDeployer: string;
let theirBuild: string;
let theirDeployment: string;

const configOf = (repo: string, port: number) =>
  `repository: ${repo}\nimage: ${REGISTRY}/slipway-test/${repo.replace('/', '-')}\nenvironments:\n  staging: { service: access-${repo.replace('/', '-')}, replicas: 1, ports: ["${port}:8080"] }\n`;

async function token(name: string, role: string, repos: string[]): Promise<string> {
  const res = await api(url, 'POST', '/api/tokens', { json: { name, role, repos } });
  expect(res.status).toBe(201);
  return (res.body as { token: string }).token;
}

beforeAll(async () => {
  slipway = await startSlipway({ name: 'access', secret: SECRET, adminToken: ADMIN });
  url = slipway.serve.url;
  for (const [repo, port] of [[OURS, 18293], [THEIRS, 18294]] as const) {
    expect((await api(url, 'PUT', `/api/repos/${repo}`, { text: configOf(repo, port) })).status).toBe(200);
  }
  scoped = await token(`dev-acme-${run}`, 'developer', ['acme/*']);
  scopedDeployer = await token(`ops-acme-${run}`, 'deployer', ['acme/*']);
  // Their build (its source is unreachable: the record is what matters) and their rollout.
  const payload = pushPayload({ repo: THEIRS, ref: 'refs/heads/main', sha: 'd'.repeat(40) });
  (payload.repository as Record<string, unknown>).clone_url = 'http://127.0.0.1:9/nothing.git';
  theirBuild = (await deliver(url, { event: 'push', payload })).body.builds[0] as string;
  const deployed = await api(url, 'POST', `/api/repos/${THEIRS}/environments/staging/deploy`, { json: { digest: `sha256:${'e'.repeat(64)}` } });
  expect(deployed.status).toBe(202);
  theirDeployment = (deployed.body as { id: string }).id;
}, 120_000);

afterAll(async () => {
  await slipway?.stop();
  await removeDeployObjects(docker, THEIRS);
  await removeDeployObjects(docker, OURS);
});

describe('a token scoped to acme/*', () => {
  it('sees and changes its own repositories', async () => {
    expect((await api(url, 'GET', `/api/repos/${OURS}`, { token: scoped })).status).toBe(200);
    expect((await api(url, 'PUT', `/api/repos/${OURS}`, { token: scoped, text: configOf(OURS, 18293) })).status).toBe(200);
    expect(((await api(url, 'GET', '/api/repos', { token: scoped })).body as { repos: { repo: string }[] }).repos.map((r) => r.repo)).toEqual([OURS]);
    expect((await api(url, 'GET', `/api/repos/${OURS}/environments`, { token: scoped })).status).toBe(200);
  });

  it.each([
    ['GET', () => `/api/repos/${THEIRS}`],
    ['GET', () => `/api/builds/${theirBuild}`],
    ['GET', () => `/api/builds/${theirBuild}/log`],
    ['POST', () => `/api/builds/${theirBuild}/cancel`],
    ['POST', () => `/api/repos/${THEIRS}/builds`],
    ['GET', () => `/api/repos/${THEIRS}/environments`],
    ['GET', () => `/api/repos/${THEIRS}/environments/staging`],
    ['POST', () => `/api/repos/${THEIRS}/environments/staging/deploy`],
    ['POST', () => `/api/repos/${THEIRS}/environments/staging/rollback`],
    ['GET', () => `/api/deployments/${theirDeployment}`],
  ])('gets 404 for %s %s of another repository', async (method, path) => {
    const body = method === 'POST' ? { json: path().endsWith('/builds') ? { ref: 'main', sha: 'd'.repeat(40) } : path().endsWith('/deploy') ? { digest: `sha256:${'f'.repeat(64)}` } : {} } : {};
    const res = await api(url, method, path(), { token: scoped, ...body });
    expect(res.status).toBe(404);
  });

  it('cannot store another repository\'s config, and nothing changes', async () => {
    const before = (await api(url, 'GET', `/api/repos/${THEIRS}`)).body;
    const res = await api(url, 'PUT', `/api/repos/${THEIRS}`, { token: scoped, text: configOf(THEIRS, 18299) });
    expect(res.status).toBe(404);
    expect((await api(url, 'GET', `/api/repos/${THEIRS}`)).body).toEqual(before);
  });

  it('lists none of their builds, audit entries, deliveries or events', async () => {
    await eventually(async () => ((await api(url, 'GET', `/api/builds/${theirBuild}`)).body as BuildRecord).status === 'failed', 60_000);
    expect(((await api(url, 'GET', '/api/builds', { token: scoped })).body as { builds: BuildRecord[] }).builds.filter((b) => b.repo === THEIRS)).toEqual([]);
    expect(((await api(url, 'GET', `/api/builds?repo=${THEIRS}`, { token: scoped })).body as { builds: BuildRecord[] }).builds).toEqual([]);
    const audit = (await api(url, 'GET', '/api/audit', { token: scopedDeployer })).body as { entries: { repo: string | null }[] };
    expect(audit.entries.length).toBeGreaterThan(0);
    expect(audit.entries.every((e) => e.repo === OURS)).toBe(true);
    const deliveries = (await api(url, 'GET', '/api/deliveries', { token: scoped })).body as { deliveries: { repo: string | null }[] };
    expect(deliveries.deliveries.filter((d) => d.repo === THEIRS)).toEqual([]);

    // Events: a change of theirs and one of ours while the stream is open; only ours arrives.
    const ac = new AbortController();
    const res = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${scoped}`, accept: 'text/event-stream' }, signal: ac.signal });
    let text = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    })().catch(() => undefined);
    await eventually(async () => text.includes(': connected'), 10_000, 50);
    for (const repo of [THEIRS, OURS]) {
      const payload = pushPayload({ repo, ref: 'refs/heads/main', sha: `${repo === OURS ? 'a' : 'b'}${'0'.repeat(39)}` });
      (payload.repository as Record<string, unknown>).clone_url = 'http://127.0.0.1:9/nothing.git';
      expect((await deliver(url, { event: 'push', payload })).status).toBe(202);
    }
    await eventually(async () => text.includes(`"repo":"${OURS}"`), 30_000, 100);
    ac.abort();
    await reading;
    expect(text).not.toContain(THEIRS);
  });
});

describe('token lifecycle', () => {
  it('lists tokens without their secrets, and a revoked token is refused at once', async () => {
    const name = `short-lived-${run}`;
    const t = await token(name, 'viewer', ['*']);
    expect((await api(url, 'GET', '/api/me', { token: t })).status).toBe(200);
    const list = (await api(url, 'GET', '/api/tokens')).body as { tokens: { name: string; repos: string[] }[] };
    expect(list.tokens.find((x) => x.name === `dev-acme-${run}`)).toMatchObject({ repos: ['acme/*'], expiresAt: null, expired: false });
    expect(JSON.stringify(list)).not.toContain(t);
    expect((await api(url, 'GET', '/api/tokens', { token: scoped })).status).toBe(403);
    expect((await api(url, 'DELETE', `/api/tokens/${name}`)).status).toBe(204);
    const after = await api(url, 'GET', '/api/me', { token: t });
    expect(after.status).toBe(401);
    expect((await api(url, 'DELETE', `/api/tokens/${name}`)).status).toBe(404);
  });

  it('an expired token is refused with a reason; a bad scope or lifetime is refused when the token is made', async () => {
    const name = `expiring-${run}`;
    const created = await api(url, 'POST', '/api/tokens', { json: { name, role: 'viewer', expires_in: '1m' } });
    expect(created.status).toBe(201);
    const t = (created.body as { token: string; expiresAt: string }).token;
    expect(Date.parse((created.body as { expiresAt: string }).expiresAt) - Date.now()).toBeGreaterThan(30_000);
    expect((await api(url, 'GET', '/api/me', { token: t })).status).toBe(200);
    // Time passes: the stored record's expiry moves into the past, as it would after a minute.
    const redis = new Redis(slipway.redis.url);
    try {
      const hashes = await redis.hgetall('slipway:tokens');
      const [hash, raw] = Object.entries(hashes).find(([, v]) => JSON.parse(v).name === name)!;
      await redis.hset('slipway:tokens', hash, JSON.stringify({ ...JSON.parse(raw), expiresAt: new Date(Date.now() - 1000).toISOString() }));
    } finally {
      redis.disconnect();
    }
    const expired = await api(url, 'GET', '/api/me', { token: t });
    expect(expired.status).toBe(401);
    expect(JSON.stringify(expired.body)).toMatch(/expired at/);
    const bad = await api(url, 'POST', '/api/tokens', { json: { name: `bad-${run}`, role: 'viewer', repos: ['acme'], expires_in: 'forever' } });
    expect(bad.status).toBe(422);
    expect((bad.body as { errors: { path: string }[] }).errors.map((e) => e.path).sort()).toEqual(['expires_in', 'repos[0]']);
  });
});
