import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { previewRequest } from '../src/rules/index.js';
import { AuditStore } from '../src/store/index.js';
import { ADMIN, api, deliver, pushPayload, randomSha, startIntake, type Intake } from '../dev/webhooks.js';

let intake: Intake;
let url: string;
let redis: Redis;
const tokens: Record<string, string> = {};

const CONFIG = {
  repository: 'acme/web',
  image: 'localhost:5000/acme/web',
  rules: [
    { name: 'edge', source: 'branch', match: 'main', tags: ['edge', '{sourceref}-{sha:7}'] },
    { name: 'nightly', source: 'branch', match: 'main', autobuild: false, tags: ['nightly'], build_args: { FLAVOUR: 'nightly' } },
    { name: 'release', source: 'tag', semver: '>=1.0.0', tags: ['{version}', 'latest'] },
  ],
};

const YAML = `
repository: acme/yaml
image: localhost:5000/acme/yaml
rules:
  - name: all
    source: branch
    match: "*"
    tags: ["{sourceref}"]
    context: ./services/web/
`;

beforeAll(async () => {
  // The configs below push to localhost:5000: the operator's registry, whose <owner>/<name> prefixes developers may use.
  intake = await startIntake({}, { SLIPWAY_REGISTRY: 'localhost:5000' });
  url = intake.url;
  redis = new Redis(intake.redis.url);
  for (const role of ['viewer', 'developer', 'deployer', 'admin']) {
    const r = await api(url, 'POST', '/api/tokens', { json: { name: `t-${role}`, role } });
    expect(r.status).toBe(201);
    tokens[role] = r.body.token;
  }
});
afterAll(async () => {
  redis?.disconnect();
  await intake?.close();
});

describe('tokens and roles', () => {
  it('answers 401 without credentials or with an unknown token, and 403 when the role is too low', async () => {
    const none = await api(url, 'GET', '/api/me', { token: null });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: expect.stringMatching(/Bearer/), errors: [] });
    expect((await api(url, 'GET', '/api/me', { token: 'slw_nope' })).status).toBe(401);
    const low = await api(url, 'PUT', '/api/repos/acme/web', { token: tokens.viewer, json: CONFIG });
    expect(low.status).toBe(403);
    expect(low.body.error).toMatch(/developer/);
    expect((await api(url, 'POST', '/api/tokens', { token: tokens.deployer, json: { name: 'x', role: 'viewer' } })).status).toBe(403);
  });

  it('tells each token who it is; SLIPWAY_ADMIN_TOKEN is `admin`', async () => {
    expect((await api(url, 'GET', '/api/me')).body).toEqual({ name: 'admin', role: 'admin', repos: ['*'] });
    for (const role of ['viewer', 'developer', 'deployer', 'admin']) {
      expect((await api(url, 'GET', '/api/me', { token: tokens[role] })).body).toEqual({ name: `t-${role}`, role, repos: ['*'] });
    }
  });

  it('a created admin token may create tokens', async () => {
    const r = await api(url, 'POST', '/api/tokens', { token: tokens.admin, json: { name: 'made-by-admin', role: 'developer' } });
    expect(r.status).toBe(201);
    expect((await api(url, 'GET', '/api/me', { token: r.body.token })).body).toEqual({ name: 'made-by-admin', role: 'developer', repos: ['*'] });
  });

  it('stores tokens only hashed', async () => {
    const stored = await redis.hkeys('slipway:tokens');
    for (const t of Object.values(tokens)) {
      expect(stored).toContain(createHash('sha256').update(t).digest('hex'));
      expect(JSON.stringify(await redis.hgetall('slipway:tokens'))).not.toContain(t);
      expect(JSON.stringify(await redis.hgetall('slipway:token-names'))).not.toContain(t);
    }
  });

  it('refuses a bad request with every problem, a duplicate name with 409, and changes nothing', async () => {
    const before = await redis.hlen('slipway:tokens');
    const bad = await api(url, 'POST', '/api/tokens', { json: { name: '', role: 'root', extra: 1 } });
    expect(bad.status).toBe(422);
    expect(new Set(bad.body.errors.map((e: { path: string }) => e.path))).toEqual(new Set(['', 'name', 'role']));
    const dup = await api(url, 'POST', '/api/tokens', { json: { name: 't-viewer', role: 'viewer' } });
    expect(dup.status).toBe(409);
    const reserved = await api(url, 'POST', '/api/tokens', { json: { name: 'admin', role: 'viewer' } });
    expect(reserved.status).toBe(409);
    expect(await redis.hlen('slipway:tokens')).toBe(before);
  });

  it('answers 400 for malformed JSON', async () => {
    const res = await fetch(`${url}/api/tokens`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"name":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/malformed/);
  });
});

describe('repositories and their configs', () => {
  it('stores a JSON config and answers the normalised document, the same on GET', async () => {
    const put = await api(url, 'PUT', '/api/repos/acme/web', { token: tokens.developer, json: CONFIG });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ repository: 'acme/web', image: 'localhost:5000/acme/web', default_branch: 'main' });
    expect(put.body.rules[0]).toMatchObject({ name: 'edge', context: '.', dockerfile: 'Dockerfile', autobuild: true, cache: false });
    const get = await api(url, 'GET', '/api/repos/acme/web', { token: tokens.viewer });
    expect(get.status).toBe(200);
    expect(get.body).toEqual(put.body);
  });

  it('stores a YAML config (application/yaml) normalised', async () => {
    const put = await api(url, 'PUT', '/api/repos/acme/yaml', { token: tokens.developer, text: YAML, type: 'application/yaml' });
    expect(put.status).toBe(200);
    expect(put.body.rules[0].context).toBe('services/web');
    expect((await api(url, 'GET', '/api/repos/acme/yaml')).body).toEqual(put.body);
    const list = await api(url, 'GET', '/api/repos', { token: tokens.viewer });
    expect(list.body.repos.map((r: { repo: string }) => r.repo)).toEqual(expect.arrayContaining(['acme/web', 'acme/yaml']));
  });

  it('rejects an invalid config whole with 422 naming every problem, and keeps the stored one', async () => {
    const before = (await api(url, 'GET', '/api/repos/acme/web')).body;
    const bad = await api(url, 'PUT', '/api/repos/acme/web', {
      token: tokens.developer,
      json: {
        repository: 'acme/web',
        image: 'acme/web:1.0',
        colour: 'blue',
        rules: [
          { name: 'a', source: 'commit', match: 'main', tags: ['x'] },
          { name: 'a', source: 'branch', match: '/(/', tags: [] },
          { source: 'tag', semver: 'not a range', tags: ['{nope}'] },
        ],
      },
    });
    expect(bad.status).toBe(422);
    const paths = bad.body.errors.map((e: { path: string }) => e.path);
    for (const p of ['image', 'colour', 'rules[0].source', 'rules[1].name', 'rules[1].match', 'rules[1].tags', 'rules[2].name', 'rules[2].semver', 'rules[2].tags[0]']) {
      expect(paths.some((x: string) => x === p || x.startsWith(p)), `${p} in ${paths.join(', ')}`).toBe(true);
    }
    expect((await api(url, 'GET', '/api/repos/acme/web')).body).toEqual(before);
  });

  it('rejects a config for another repository than the URL (422) and malformed YAML (400)', async () => {
    const other = await api(url, 'PUT', '/api/repos/acme/other', { token: tokens.developer, json: CONFIG });
    expect(other.status).toBe(422);
    expect(other.body.errors).toEqual([{ path: 'repository', message: expect.stringMatching(/acme\/other/) }]);
    const yaml = await api(url, 'PUT', '/api/repos/acme/yaml', { token: tokens.developer, text: 'rules: [\n  - name: x\n', type: 'application/yaml' });
    expect(yaml.status).toBe(400);
    expect((await api(url, 'GET', '/api/repos/acme/other')).status).toBe(404);
  });

  it('deletes only as admin', async () => {
    await api(url, 'PUT', '/api/repos/acme/gone', { json: { repository: 'acme/gone', image: 'localhost:5000/acme/gone' } });
    expect((await api(url, 'DELETE', '/api/repos/acme/gone', { token: tokens.deployer })).status).toBe(403);
    expect((await api(url, 'DELETE', '/api/repos/acme/gone', { token: tokens.admin })).status).toBe(204);
    expect((await api(url, 'GET', '/api/repos/acme/gone')).status).toBe(404);
    expect((await api(url, 'DELETE', '/api/repos/acme/gone')).status).toBe(404);
  });
});

describe('rules preview', () => {
  it('answers exactly what the rules engine answers', async () => {
    const inputs = [
      { config: CONFIG, ref: 'refs/heads/main', sha: 'a'.repeat(40) },
      { config: CONFIG, ref: 'refs/tags/v1.2.3' },
      { config: CONFIG, ref: 'refs/tags/v2.0.0-rc.1', sha: 'b'.repeat(40) },
      { config: YAML, ref: 'feature/login', changed: ['services/web/a.ts'] },
    ];
    for (const input of inputs) {
      const r = await api(url, 'POST', '/api/rules/preview', { token: tokens.viewer, json: input });
      expect(r.status).toBe(200);
      expect(r.body).toEqual(JSON.parse(JSON.stringify(previewRequest(input))));
    }
  });

  it('answers 422 with every problem of the config and the request', async () => {
    const r = await api(url, 'POST', '/api/rules/preview', { token: tokens.viewer, json: { config: { repository: 'acme/web' }, ref: 'bad..ref', sha: 'xyz' } });
    expect(r.status).toBe(422);
    const paths = r.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['config.image', 'ref', 'sha']));
  });
});

describe('builds', () => {
  it('builds by hand with a sha, also rules with autobuild: false, and audits it', async () => {
    const sha = randomSha();
    const r = await api(url, 'POST', '/api/repos/acme/web/builds', { token: tokens.developer, json: { ref: 'refs/heads/main', sha } });
    expect(r.status).toBe(202);
    expect(r.body.builds).toHaveLength(2);
    const [edge, nightly] = await Promise.all(r.body.builds.map(async (id: string) => (await api(url, 'GET', `/api/builds/${id}`)).body));
    expect(edge).toMatchObject({ repo: 'acme/web', ref: 'refs/heads/main', sha, rules: ['edge'], tags: ['edge', `main-${sha.slice(0, 7)}`], status: 'queued', trigger: 'manual', by: 't-developer', digest: null, deployments: [] });
    expect(nightly).toMatchObject({ rules: ['nightly'], tags: ['nightly'], build_args: { FLAVOUR: 'nightly' } });
    const audit = await new AuditStore(redis).list(5);
    expect(audit[0]).toMatchObject({ actor: 't-developer', action: 'build.create', repo: 'acme/web' });
  });

  it('builds one rule by name, a bare branch name, and the last pushed sha when none is given', async () => {
    const sha = randomSha();
    const push = await deliver(url, { event: 'push', payload: pushPayload({ repo: 'acme/web', ref: 'refs/heads/main', sha }) });
    expect(push.status).toBe(202);
    const r = await api(url, 'POST', '/api/repos/acme/web/builds', { token: tokens.developer, json: { ref: 'main', rule: 'nightly' } });
    expect(r.status).toBe(202);
    expect(r.body.builds).toHaveLength(1);
    expect((await api(url, 'GET', `/api/builds/${r.body.builds[0]}`)).body).toMatchObject({ sha, ref: 'refs/heads/main', rules: ['nightly'] });
  });

  it('refuses with a reason: unknown repository 404, no sha known 422, unknown rule 422, nothing matching 422, viewer 403', async () => {
    expect((await api(url, 'POST', '/api/repos/acme/nope/builds', { json: { ref: 'main', sha: randomSha() } })).status).toBe(404);
    const noSha = await api(url, 'POST', '/api/repos/acme/web/builds', { json: { ref: 'refs/heads/never-pushed' } });
    expect(noSha.status).toBe(422);
    expect(noSha.body.errors[0].path).toBe('sha');
    const rule = await api(url, 'POST', '/api/repos/acme/web/builds', { json: { ref: 'main', sha: randomSha(), rule: 'missing' } });
    expect(rule.status).toBe(422);
    const none = await api(url, 'POST', '/api/repos/acme/web/builds', { json: { ref: 'refs/heads/other', sha: randomSha() } });
    expect(none.status).toBe(422);
    expect(none.body.error).toMatch(/nothing to build/);
    const badSha = await api(url, 'POST', '/api/repos/acme/web/builds', { json: { ref: 'main', sha: 'abc' } });
    expect(badSha.status).toBe(422);
    expect((await api(url, 'POST', '/api/repos/acme/web/builds', { token: tokens.viewer, json: { ref: 'main', sha: randomSha() } })).status).toBe(403);
  });

  it('lists newest first, filters by repo and status, bounds limit', async () => {
    await api(url, 'POST', '/api/repos/acme/yaml/builds', { json: { ref: 'x', sha: randomSha() } });
    const all = (await api(url, 'GET', '/api/builds', { token: tokens.viewer })).body.builds as { id: string; repo: string; queuedAt: string; status: string }[];
    expect(all.length).toBeGreaterThan(2);
    const sorted = [...all].sort((a, b) => (a.queuedAt < b.queuedAt ? 1 : a.queuedAt > b.queuedAt ? -1 : 0));
    expect(all.map((b) => b.queuedAt)).toEqual(sorted.map((b) => b.queuedAt));
    const yaml = (await api(url, 'GET', '/api/builds?repo=acme/yaml')).body.builds as { repo: string }[];
    expect(yaml.length).toBeGreaterThan(0);
    expect(yaml.every((b) => b.repo === 'acme/yaml')).toBe(true);
    const queued = (await api(url, 'GET', '/api/builds?status=queued&limit=2')).body.builds as { status: string }[];
    expect(queued).toHaveLength(2);
    expect(queued.every((b) => b.status === 'queued')).toBe(true);
    expect((await api(url, 'GET', '/api/builds?limit=501')).status).toBe(422);
    expect((await api(url, 'GET', '/api/builds?status=done')).status).toBe(422);
    expect((await api(url, 'GET', '/api/builds/does-not-exist')).status).toBe(404);
  });

  it('cancels a queued build (202 with the record), then answers 409; unknown 404', async () => {
    const r = await api(url, 'POST', '/api/repos/acme/yaml/builds', { json: { ref: 'to-cancel', sha: randomSha() } });
    const id = r.body.builds[0];
    expect((await api(url, 'POST', `/api/builds/${id}/cancel`, { token: tokens.viewer })).status).toBe(403);
    const c = await api(url, 'POST', `/api/builds/${id}/cancel`, { token: tokens.developer });
    expect(c.status).toBe(202);
    expect(c.body).toMatchObject({ id, status: 'cancelled' });
    expect((await api(url, 'GET', `/api/builds/${id}`)).body.status).toBe('cancelled');
    const again = await api(url, 'POST', `/api/builds/${id}/cancel`, { token: tokens.developer });
    expect(again.status).toBe(409);
    expect((await api(url, 'POST', '/api/builds/nope/cancel')).status).toBe(404);
    const audit = await new AuditStore(redis).list(3);
    expect(audit.some((a) => a.action === 'build.cancel' && a.actor === 't-developer')).toBe(true);
  });
});

describe('events, health and metrics', () => {
  it('streams build state changes as server-sent events', async () => {
    const ctl = new AbortController();
    const res = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${tokens.viewer}`, accept: 'text/event-stream' }, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    // The subscription is live once the first comment arrived.
    while (!text.includes(': connected')) text += new TextDecoder().decode((await reader.read()).value);
    const r = await api(url, 'POST', '/api/repos/acme/yaml/builds', { json: { ref: 'sse', sha: randomSha() } });
    const id = r.body.builds[0] as string;
    while (!text.includes(`"id":"${id}"`)) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toMatch(new RegExp(`event: build\\ndata: \\{"id":"${id}"`));
    ctl.abort();
  });

  it('accepts ?access_token= only for event streams', async () => {
    const sse = await fetch(`${url}/api/events?access_token=${tokens.viewer}`, { headers: { accept: 'text/event-stream' } });
    expect(sse.status).toBe(200);
    await sse.body!.cancel();
    expect((await fetch(`${url}/api/me?access_token=${tokens.viewer}`)).status).toBe(401);
  });

  it('answers /healthz, /readyz (Redis and Docker) and /metrics without auth', async () => {
    expect((await api(url, 'GET', '/healthz', { token: null })).status).toBe(200);
    const ready = await api(url, 'GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ redis: 'ok', docker: 'ok' });
    await deliver(url, { event: 'ping', payload: { zen: 'z' } });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/slipway_webhook_deliveries_total\{outcome="ping"\} [1-9]/);
  });

  it('answers an unknown path 404 in the error shape', async () => {
    const r = await api(url, 'GET', '/api/nothing-here');
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ error: expect.any(String), errors: [] });
  });

  it('records audit entries for token creation and config changes, with the config versions', async () => {
    const first = await api(url, 'PUT', '/api/repos/acme/audited', { token: tokens.developer, json: { repository: 'acme/audited', image: 'localhost:5000/acme/audited' } });
    expect(first.status).toBe(200);
    await api(url, 'PUT', '/api/repos/acme/audited', { token: tokens.developer, json: { repository: 'acme/audited', image: 'localhost:5000/acme/audited/v2' } });
    const all = await new AuditStore(redis).list(1000);
    const actions = new Set(all.map((a) => a.action));
    for (const a of ['token.create', 'repo.create', 'repo.update', 'repo.delete', 'build.create', 'build.cancel']) expect(actions).toContain(a);
    const [update, create] = all.filter((a) => a.repo === 'acme/audited');
    expect(update).toMatchObject({ action: 'repo.update', actor: 't-developer', from: create!.to, result: 'stored' });
    expect(update!.to).not.toBe(create!.to);
  });
});

describe('stopping serve', () => {
  it('ends open event streams cleanly instead of holding the shutdown up', async () => {
    const own = await startIntake();
    const res = await fetch(`${own.url}/api/events`, { headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/event-stream' } });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(': connected')) text += new TextDecoder().decode((await reader.read()).value);
    const closing = own.close();
    // A clean end of the stream (done), not a connection cut when the hard limit strikes.
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
    }
    await closing;
  });
});
