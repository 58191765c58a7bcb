import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lanes } from '../src/queue/index.js';
import { previewRef, type RepoConfig } from '../src/rules/index.js';
import { keys, RepoStore } from '../src/store/index.js';
import { rulesEngine, toBuildRecords } from '../src/webhooks/index.js';
import { LOCAL_SOURCES } from '../dev/sources.js';
import { api, deliver, eventually, PREVIOUS_SECRET, pushPayload, randomSha, sign, startIntake, type Intake } from '../dev/webhooks.js';

const require = createRequire(import.meta.url);

interface Example {
  name: string;
  examples: Record<string, any>[];
}

/** Every push, create, ping and pull_request example of @octokit/webhooks-examples (github.com and every GHES). */
function examples(): { event: string; payload: Record<string, any>; source: string }[] {
  const out: { event: string; payload: Record<string, any>; source: string }[] = [];
  const seen = new Set<string>();
  for (const source of ['api.github.com', 'ghes-31', 'ghes-32', 'ghes-33', 'ghes-34', 'ghes-35']) {
    const all = require(`@octokit/webhooks-examples/${source}/index.json`) as Example[];
    for (const e of all) {
      if (!['push', 'create', 'ping', 'pull_request'].includes(e.name)) continue;
      for (const payload of e.examples) {
        const key = `${e.name}:${JSON.stringify(payload)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ event: e.name, payload, source });
      }
    }
  }
  return out;
}

/** A config for every example repository: branch and tag rules, a paths-filtered rule, build args. */
function exampleConfig(repo: string): Record<string, unknown> {
  return {
    repository: repo,
    image: `localhost:5000/${repo.toLowerCase()}`,
    rules: [
      { name: 'branches', source: 'branch', match: '*', tags: ['{sourceref}', '{sourceref}-{sha:7}'], build_args: { GIT_SHA: '{sha}' } },
      { name: 'docs', source: 'branch', match: 'master', paths: ['**/*.md'], context: 'docs', tags: ['docs'] },
      { name: 'gitignore', source: 'branch', match: '/^(master|main)$/', paths: ['.gitignore'], tags: ['ignore-{\\1}'] },
      { name: 'tags', source: 'tag', match: '*', tags: ['{sourceref}', 'latest'] },
    ],
  };
}

let intake: Intake;
let url: string;

beforeAll(async () => {
  // The GHES examples come from octocoders.github.io: listed, as a GitHub Enterprise installation lists its host.
  // The examples were pushed years ago: a replay window that old lets them count as new pushes.
  intake = await startIntake({}, { SLIPWAY_SOURCE_ALLOW: `${LOCAL_SOURCES},octocoders.github.io`, SLIPWAY_REPLAY_WINDOW: '1000000h' });
  url = intake.url;
});
afterAll(async () => {
  await intake?.close();
});

async function build(id: string): Promise<any> {
  const r = await api(url, 'GET', `/api/builds/${id}`);
  expect(r.status).toBe(200);
  return r.body;
}

async function buildCount(): Promise<number> {
  return (await api(url, 'GET', '/api/builds?limit=500')).body.builds.length;
}

describe('every example delivery of @octokit/webhooks-examples', () => {
  it('answers 2xx and queues exactly the builds the rules predict', async () => {
    const all = examples();
    expect(all.filter((e) => e.event === 'push').length).toBeGreaterThan(0);
    const repos = new Set(all.map((e) => e.payload.repository?.full_name).filter(Boolean) as string[]);
    const configs = new Map<string, RepoConfig>();
    for (const repo of repos) {
      const put = await api(url, 'PUT', `/api/repos/${repo}`, { json: exampleConfig(repo) });
      expect(put.status).toBe(200);
      configs.set(repo, put.body);
    }

    let builtSomething = 0;
    // Every example in both content types GitHub sends.
    // Each one a new push, later than the one before: the examples' own pushed_at go back and forth,
    // and a push older than its ref's newest accepted one is a replay.
    let pushedAt = Math.floor(Date.now() / 1000);
    for (const [ex, as] of [...all.map((e) => [e, 'json'] as const), ...all.map((e) => [e, 'form'] as const)]) {
      const payload = ex.event === 'push' ? { ...ex.payload, repository: { ...ex.payload.repository, pushed_at: pushedAt++ } } : ex.payload;
      const res = await deliver(url, { event: ex.event, payload, as });
      const what = `${ex.source} ${ex.event} ${ex.payload.ref ?? ex.payload.action ?? ''} as ${as}`;
      expect(res.status, what).toBeGreaterThanOrEqual(200);
      expect(res.status, what).toBeLessThan(300);
      if (ex.event === 'ping') {
        expect(res.status).toBe(200);
        continue;
      }
      expect(res.status, what).toBe(202);
      expect(res.body.deliveryId).toBe(res.id);
      if (ex.event !== 'push') {
        expect(res.body.builds).toEqual([]);
        expect(res.body.ignored, what).toMatch(ex.event === 'create' ? /create events build nothing/ : /pull_request events build nothing/);
        continue;
      }
      const p = ex.payload;
      if (p.deleted) {
        expect(res.body).toMatchObject({ builds: [], ignored: 'deleted ref' });
        continue;
      }
      // What the rules engine says for this ref, sha and these changed files.
      const sha = p.head_commit?.id ?? p.after;
      const files = new Set<string>();
      for (const c of p.commits ?? []) for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]) f && files.add(f);
      const isBranch = String(p.ref).startsWith('refs/heads/');
      const expected = previewRef(configs.get(p.repository.full_name)!, {
        ref: p.ref,
        sha,
        ...(isBranch && files.size ? { changed: [...files] } : {}),
      });
      expect(res.body.builds.length, what).toBe(expected.builds.length);
      expect(res.body.skipped, what).toEqual(expected.skipped);
      for (const [i, id] of (res.body.builds as string[]).entries()) {
        const rec = await build(id);
        const want = expected.builds[i]!;
        expect(rec, what).toMatchObject({
          repo: p.repository.full_name,
          ref: p.ref,
          sha,
          rules: want.rules,
          tags: want.tags,
          context: want.context,
          dockerfile: want.dockerfile,
          build_args: want.build_args,
          cache: want.cache,
          deploy: want.deploy,
          image: `localhost:5000/${String(p.repository.full_name).toLowerCase()}`,
          digest: null,
          deliveryId: res.id,
          trigger: 'webhook',
          by: `github:${p.pusher.name}`,
        });
        expect(['queued', 'superseded']).toContain(rec.status);
        builtSomething++;
      }
    }
    expect(builtSomething).toBeGreaterThan(0);
  });
});

describe('signatures', () => {
  const repo = 'sig/app';
  beforeAll(async () => {
    await api(url, 'PUT', `/api/repos/${repo}`, { json: { repository: repo, image: 'localhost:5000/sig/app' } });
  });

  it('refuses an unsigned delivery with 401 and records nothing', async () => {
    const before = await buildCount();
    const res = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main' }), secret: null });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/X-Hub-Signature-256/);
    expect(await buildCount()).toBe(before);
    expect((await api(url, 'GET', `/api/deliveries/${res.id}`)).status).toBe(404);
  });

  it('refuses a wrong secret, a tampered body and a malformed signature with 401', async () => {
    const before = await buildCount();
    const payload = pushPayload({ repo, ref: 'refs/heads/main' });
    const wrong = await deliver(url, { event: 'push', payload, secret: 'not-the-secret' });
    expect(wrong.status).toBe(401);
    const body = JSON.stringify(payload);
    const tampered = await deliver(url, { event: 'push', payload, rawBody: body.replace('main', 'mainx'), signature: sign(body) });
    expect(tampered.status).toBe(401);
    const garbage = await deliver(url, { event: 'push', payload, signature: 'sha256=zz' });
    expect(garbage.status).toBe(401);
    const sha1 = await deliver(url, { event: 'push', payload, signature: 'sha1=0123456789abcdef0123456789abcdef01234567' });
    expect(sha1.status).toBe(401);
    expect(await buildCount()).toBe(before);
    for (const r of [wrong, tampered, garbage, sha1]) expect((await api(url, 'GET', `/api/deliveries/${r.id}`)).status).toBe(404);
  });

  it('accepts the previous secret during rotation', async () => {
    const res = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main' }), secret: PREVIOUS_SECRET });
    expect(res.status).toBe(202);
    expect(res.body.builds).toHaveLength(1);
  });
});

describe('bodies and headers', () => {
  const repo = 'body/app';
  beforeAll(async () => {
    await api(url, 'PUT', `/api/repos/${repo}`, { json: { repository: repo, image: 'localhost:5000/body/app' } });
  });

  it('accepts application/x-www-form-urlencoded with payload=', async () => {
    const res = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main', sha: 'a'.repeat(40) }), as: 'form' });
    expect(res.status).toBe(202);
    expect(res.body.builds).toHaveLength(1);
    expect(await build(res.body.builds[0])).toMatchObject({ sha: 'a'.repeat(40), tags: ['latest'], rules: ['default'] });
  });

  it('names a missing X-GitHub-Event or X-GitHub-Delivery header (400)', async () => {
    const payload = pushPayload({ repo, ref: 'refs/heads/main' });
    const noEvent = await deliver(url, { event: 'push', payload, headers: { 'x-github-event': null } });
    expect(noEvent.status).toBe(400);
    expect(noEvent.body.error).toMatch(/X-GitHub-Event/);
    const noDelivery = await deliver(url, { event: 'push', payload, headers: { 'x-github-delivery': null } });
    expect(noDelivery.status).toBe(400);
    expect(noDelivery.body.error).toMatch(/X-GitHub-Delivery/);
  });

  it('answers 400 for malformed JSON, a form without payload=, a non-object and a push without its fields', async () => {
    const before = await buildCount();
    const bad = await deliver(url, { event: 'push', payload: null, rawBody: '{"ref": "refs/heads/main",' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/malformed JSON/);
    const form = await deliver(url, { event: 'push', payload: null, as: 'form', rawBody: 'notpayload=1' });
    expect(form.status).toBe(400);
    expect(form.body.error).toMatch(/payload=/);
    const array = await deliver(url, { event: 'push', payload: [1, 2] });
    expect(array.status).toBe(400);
    const partial = await deliver(url, { event: 'push', payload: { ref: 'refs/heads/main', repository: {} } });
    expect(partial.status).toBe(400);
    expect(partial.body.error).toMatch(/repository\.full_name/);
    const type = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main' }), headers: { 'content-type': 'text/plain' } });
    expect(type.status).toBe(415);
    expect(await buildCount()).toBe(before);
  });

  it('answers 413 for a body over 25 MB and records nothing', async () => {
    const before = await buildCount();
    const big = Buffer.alloc(25 * 1024 * 1024 + 1, 0x20);
    const res = await deliver(url, { event: 'push', payload: null, rawBody: big });
    expect(res.status).toBe(413);
    expect(await buildCount()).toBe(before);
  });

  it('accepts a body just under the limit when it is valid (padding is whitespace)', async () => {
    const json = JSON.stringify(pushPayload({ repo, ref: 'refs/heads/main' }));
    const body = json + ' '.repeat(25 * 1024 * 1024 - Buffer.byteLength(json));
    const res = await deliver(url, { event: 'push', payload: null, rawBody: body });
    expect(res.status).toBe(202);
  });
});

describe('decisions', () => {
  const repo = 'dec/app';
  beforeAll(async () => {
    const put = await api(url, 'PUT', `/api/repos/${repo}`, {
      json: {
        repository: repo,
        image: 'localhost:5000/dec/app',
        rules: [
          { name: 'edge', source: 'branch', match: 'main', tags: ['edge'] },
          { name: 'web', source: 'branch', match: 'main', paths: ['web/**'], context: 'web', tags: ['web'] },
          { name: 'manual', source: 'branch', match: 'main', autobuild: false, tags: ['manual'] },
          { name: 'release', source: 'tag', semver: '>=1.0.0', tags: ['{version}', 'latest'] },
        ],
      },
    });
    expect(put.status).toBe(200);
  });

  it('stores and answers which rules matched and which were skipped and why', async () => {
    const res = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main', files: { modified: ['README.md'] } }) });
    expect(res.status).toBe(202);
    expect(res.body.builds).toHaveLength(1);
    const reasons = Object.fromEntries((res.body.skipped as { rule: string; reason: string }[]).map((s) => [s.rule, s.reason]));
    expect(Object.keys(reasons).sort()).toEqual(['manual', 'release', 'web']);
    expect(reasons.manual).toBe('autobuild is false');
    const stored = await api(url, 'GET', `/api/deliveries/${res.id}`);
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ outcome: 'accepted', builds: res.body.builds, repo, ref: 'refs/heads/main', matched: [{ rules: ['edge'], tags: ['edge'] }] });
    expect(stored.body.skipped).toEqual(res.body.skipped);
    const list = await api(url, 'GET', '/api/deliveries?limit=5');
    expect(list.body.deliveries[0].deliveryId).toBe(res.id);
  });

  it('lists deliveries newest first from their kept decisions: an entry of the older journal form is read as is, an expired one left out', async () => {
    const ignored = await deliver(url, { event: 'create', payload: { ref: 'v1', ref_type: 'tag', repository: { full_name: repo } } });
    const accepted = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main' }) });
    const { Redis } = await import('ioredis');
    const redis = new Redis(intake.redis.url);
    // the log holds keys, not copies
    expect(await redis.lrange(keys.deliveries, 0, 1)).toEqual([keys.delivery(accepted.id), keys.delivery(ignored.id)]);
    const older = { deliveryId: 'older-form', event: 'push', outcome: 'ignored', ignored: 'deleted ref' };
    await redis.lpush(keys.deliveries, JSON.stringify(older), keys.delivery('expired'));
    const list = (await api(url, 'GET', '/api/deliveries?limit=4')).body.deliveries as { deliveryId: string; outcome: string; superseded?: string[] }[];
    expect(list.map((d) => d.deliveryId)).toEqual(['older-form', accepted.id, ignored.id]);
    expect(list[0]).toEqual(older);
    expect(list[1]).toMatchObject({ outcome: 'accepted', builds: accepted.body.builds, superseded: accepted.body.superseded });
    expect(list[2]).toMatchObject({ outcome: 'ignored', ignored: expect.stringContaining('create events build nothing') });
    redis.disconnect();
  });

  it('a tag push builds its commit with semver tags', async () => {
    const sha = randomSha();
    const res = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/tags/v1.4.2', sha }) });
    expect(res.body.builds).toHaveLength(1);
    expect(await build(res.body.builds[0])).toMatchObject({ sha, tags: ['1.4.2', 'latest'], rules: ['release'] });
  });

  it('ignores, with the reason, an unknown repository, a deleted ref, [skip ci], an invalid ref, create and pull_request', async () => {
    const before = await buildCount();
    const cases: [Parameters<typeof deliver>[1], string | RegExp][] = [
      [{ event: 'push', payload: pushPayload({ repo: 'nobody/knows', ref: 'refs/heads/main' }) }, 'unknown repository nobody/knows'],
      [{ event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main', deleted: true }) }, 'deleted ref'],
      [{ event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main', message: 'tidy up [skip ci]' }) }, '[skip ci] in the head commit message'],
      [{ event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main', message: 'Docs\n\n[CI SKIP]' }) }, '[CI SKIP] in the head commit message'],
      [{ event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/bad..name' }) }, 'invalid ref'],
      [{ event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/lock.lock' }) }, 'invalid ref'],
      [{ event: 'create', payload: { ref: 'v1.0.0', ref_type: 'tag', repository: { full_name: repo } } }, /create events build nothing/],
      [{ event: 'pull_request', payload: { action: 'opened', number: 1, repository: { full_name: repo } } }, /pull_request events build nothing/],
      [{ event: 'issues', payload: { action: 'opened', repository: { full_name: repo } } }, 'issues events build nothing'],
    ];
    for (const [d, reason] of cases) {
      const res = await deliver(url, d);
      expect(res.status, String(reason)).toBe(202);
      expect(res.body.builds).toEqual([]);
      if (typeof reason === 'string') expect(res.body.ignored).toBe(reason);
      else expect(res.body.ignored).toMatch(reason);
      const stored = await api(url, 'GET', `/api/deliveries/${res.id}`);
      expect(stored.body).toMatchObject({ outcome: 'ignored', ignored: res.body.ignored });
    }
    expect(await buildCount()).toBe(before);
  });

  it('answers ping with 200', async () => {
    const res = await deliver(url, { event: 'ping', payload: { zen: 'Keep it logically awesome.', hook_id: 1 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ deliveryId: res.id, zen: 'Keep it logically awesome.' });
  });

  it('uses the new rules right after the config changes', async () => {
    const r = 'dec/changing';
    await api(url, 'PUT', `/api/repos/${r}`, { json: { repository: r, image: 'localhost:5000/dec/changing', rules: [{ name: 'a', source: 'branch', match: '*', tags: ['a'] }] } });
    const one = await deliver(url, { event: 'push', payload: pushPayload({ repo: r, ref: 'refs/heads/x' }) });
    expect((await build(one.body.builds[0])).tags).toEqual(['a']);
    await api(url, 'PUT', `/api/repos/${r}`, { json: { repository: r, image: 'localhost:5000/dec/changing', rules: [{ name: 'b', source: 'branch', match: '*', tags: ['b'] }] } });
    const two = await deliver(url, { event: 'push', payload: pushPayload({ repo: r, ref: 'refs/heads/y' }) });
    expect((await build(two.body.builds[0])).tags).toEqual(['b']);
  });
});

describe('configs changed by another process', () => {
  it('decides with the current config, though this process read an older one, and stops building a deleted repository', async () => {
    const r = 'dec/elsewhere';
    const doc = (tag: string) => ({ repository: r, image: 'localhost:5000/dec/elsewhere', rules: [{ name: tag, source: 'branch', match: '*', tags: [tag] }] });
    await api(url, 'PUT', `/api/repos/${r}`, { json: doc('a') });
    const one = await deliver(url, { event: 'push', payload: pushPayload({ repo: r, ref: 'refs/heads/x' }) });
    expect((await build(one.body.builds[0])).tags).toEqual(['a']);

    // Another API process (its own store and connection) changes the config, then deletes it.
    const { Redis } = await import('ioredis');
    const other = new Redis(intake.redis.url);
    const elsewhere = new RepoStore(other);
    await elsewhere.put(r, rulesEngine.normalise(doc('b')), 'token:other', new Date());
    const two = await deliver(url, { event: 'push', payload: pushPayload({ repo: r, ref: 'refs/heads/y' }) });
    expect((await build(two.body.builds[0])).tags).toEqual(['b']);

    await elsewhere.delete(r);
    const before = await buildCount();
    const three = await deliver(url, { event: 'push', payload: pushPayload({ repo: r, ref: 'refs/heads/z' }) });
    expect(three.status).toBe(202);
    expect(three.body).toMatchObject({ builds: [], ignored: `unknown repository ${r}` });
    expect(await buildCount()).toBe(before);
    other.disconnect();
  });

  it('indexes the versions of configs stored before the versions hash existed', async () => {
    const { Redis } = await import('ioredis');
    const redis = new Redis(intake.redis.url);
    const store = new RepoStore(redis);
    const { stored } = await store.put('dec/legacy', rulesEngine.normalise({ repository: 'dec/legacy', image: 'localhost:5000/x', rules: [{ name: 'a', source: 'branch', match: '*', tags: ['a'] }] }), 'admin', new Date());
    await redis.hdel('slipway:repo-versions', 'dec/legacy');
    expect(await store.indexVersions()).toBe(1);
    expect(await redis.hget('slipway:repo-versions', 'dec/legacy')).toBe(stored.version);
    expect(await store.indexVersions()).toBe(0);
    redis.disconnect();
  });

  it('takes a claim for one repository only, however many processes store at once; indexes the claims of configs stored before the index', async () => {
    const { Redis } = await import('ioredis');
    const conns = [0, 1, 2, 3].map(() => new Redis(intake.redis.url));
    const claim = (repo: string) => [{ field: 'port:18999/tcp', holder: `${repo} (environment staging)` }];
    const doc = (repo: string) => rulesEngine.normalise({ repository: repo, image: `localhost:5000/${repo}` });
    // Four API processes, each its own connection, in the same turn: the scripts run one after another in Redis.
    const answers = await Promise.allSettled(conns.map((c, i) => new RepoStore(c).put(`claims/racer-${i}`, doc(`claims/racer-${i}`), 'admin', new Date(), claim(`claims/racer-${i}`))));
    const won = answers.findIndex((a) => a.status === 'fulfilled');
    expect(answers.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    for (const a of answers.filter((x) => x.status === 'rejected')) {
      expect((a as PromiseRejectedResult).reason).toMatchObject({ code: 'claims_taken', taken: [{ field: 'port:18999/tcp', holder: `claims/racer-${won} (environment staging)` }] });
    }
    const store = new RepoStore(conns[0]!);
    expect(await store.get(`claims/racer-${(won + 1) % 4}`)).toBeNull();
    // Dropping the claim frees it; deleting the repository frees what it holds.
    await store.put(`claims/racer-${won}`, doc(`claims/racer-${won}`), 'admin', new Date(), []);
    await store.put('claims/racer-9', doc('claims/racer-9'), 'admin', new Date(), claim('claims/racer-9'));
    await store.delete('claims/racer-9');
    await store.put('claims/racer-8', doc('claims/racer-8'), 'admin', new Date(), claim('claims/racer-8'));
    // A config stored before the claims index: indexed at start-up, first come first held.
    await conns[0]!.hdel('slipway:claims', 'port:18999/tcp');
    expect(await store.indexClaims((s) => (s.repo === 'claims/racer-8' ? claim(s.repo) : []))).toBe(1);
    await expect(store.put('claims/racer-7', doc('claims/racer-7'), 'admin', new Date(), claim('claims/racer-7'))).rejects.toMatchObject({ code: 'claims_taken' });
    for (const c of conns) c.disconnect();
  });
});

describe('redelivery and supersede', () => {
  const repo = 'again/app';
  beforeAll(async () => {
    await api(url, 'PUT', `/api/repos/${repo}`, {
      json: { repository: repo, image: 'localhost:5000/again/app', rules: [{ name: 'all', source: 'branch', match: '*', tags: ['{sourceref}'] }] },
    });
  });

  it('answers a repeated delivery id 200 {duplicate: true} and queues nothing', async () => {
    const id = randomUUID();
    const payload = pushPayload({ repo, ref: 'refs/heads/main' });
    const first = await deliver(url, { event: 'push', payload, id });
    expect(first.status).toBe(202);
    const before = await buildCount();
    const again = await deliver(url, { event: 'push', payload, id });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ deliveryId: id, duplicate: true });
    // Even a different payload under the same id is a redelivery.
    const other = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/main' }), id });
    expect(other.status).toBe(200);
    expect(await buildCount()).toBe(before);
  });

  it('the same delivery arriving twice at once is queued once', async () => {
    const id = randomUUID();
    const payload = pushPayload({ repo, ref: 'refs/heads/twice' });
    const before = await buildCount();
    const answers = await Promise.all([deliver(url, { event: 'push', payload, id }), deliver(url, { event: 'push', payload, id })]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 202]);
    expect(answers.find((a) => a.status === 200)!.body).toEqual({ deliveryId: id, duplicate: true });
    expect(await buildCount()).toBe(before + 1);
  });

  it('a delivery whose builds exist but whose decision is gone (past the dedupe window) is a duplicate, not built twice', async () => {
    const id = randomUUID();
    const payload = pushPayload({ repo, ref: 'refs/heads/crashed' });
    // Its builds queued (ids derive from the delivery id), its decision expired.
    const { Redis } = await import('ioredis');
    const { pino } = await import('pino');
    const r = new Redis(intake.redis.url);
    const lanes = new Lanes({ redis: r, log: pino({ level: 'silent' }) });
    const [left] = toBuildRecords([{ rules: ['all'], tags: ['crashed'], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: [] }], {
      repo, ref: 'refs/heads/crashed', sha: (payload.after as string), image: 'localhost:5000/again/app', cloneUrl: null, deliveryId: id, trigger: 'webhook', by: 'github:octocat', warnings: [], at: new Date(),
    });
    await lanes.submit([left!]);
    await lanes.close();
    r.disconnect();
    const before = await buildCount();
    const res = await deliver(url, { event: 'push', payload, id });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deliveryId: id, duplicate: true });
    expect(await buildCount()).toBe(before);
    expect((await api(url, 'GET', `/api/deliveries/${id}`)).body).toMatchObject({ outcome: 'accepted', builds: [left!.id] });
  });

  it('remembers delivery ids for at least 7 days', async () => {
    const res = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/ttl' }) });
    const { Redis } = await import('ioredis');
    const r = new Redis(intake.redis.url);
    const ttl = await r.pttl(`slipway:delivery:${res.id}`);
    r.disconnect();
    expect(ttl).toBeGreaterThanOrEqual(7 * 24 * 3600 * 1000 - 60_000);
  });

  it('a newer push to the same ref supersedes the still-queued build', async () => {
    const a = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/feature' }) });
    const b = await deliver(url, { event: 'push', payload: pushPayload({ repo, ref: 'refs/heads/feature' }) });
    expect(b.body.superseded).toEqual(a.body.builds);
    expect(await build(a.body.builds[0])).toMatchObject({ status: 'superseded', supersededBy: b.body.builds[0] });
    expect((await build(b.body.builds[0])).status).toBe('queued');
    // Each decision record names what its delivery superseded (recorded with the submission).
    expect((await api(url, 'GET', `/api/deliveries/${a.id}`)).body).toMatchObject({ outcome: 'accepted', builds: a.body.builds, superseded: [] });
    expect((await api(url, 'GET', `/api/deliveries/${b.id}`)).body).toMatchObject({ outcome: 'accepted', builds: b.body.builds, superseded: a.body.builds });
  });
});

describe('while Redis is down', () => {
  it('answers 503 (never 202) on the webhook and /readyz, and accepts again once Redis is back', async () => {
    const repo = 'down/app';
    await api(url, 'PUT', `/api/repos/${repo}`, { json: { repository: repo, image: 'localhost:5000/down/app' } });
    await intake.redis.kill9();
    const payload = pushPayload({ repo, ref: 'refs/heads/main' });
    const id = randomUUID();
    const down = await deliver(url, { event: 'push', payload, id });
    expect(down.status).toBe(503);
    const notReady = await api(url, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body.failed).toContain('redis');
    // The API answers 503 too (not 500) while it cannot reach Redis.
    expect((await api(url, 'GET', '/api/me', { token: 'slw_any' })).status).toBe(503);
    await intake.redis.restart();
    // GitHub's redelivery of the refused delivery is accepted once Redis is back, without a restart.
    const back = await eventually(async () => {
      const r = await deliver(url, { event: 'push', payload, id });
      return r.status === 202 ? r : undefined;
    }, 250);
    expect(back.body.builds).toHaveLength(1);
    // (Docker's half of /readyz is covered in test/api.test.ts.)
    expect((await api(url, 'GET', '/readyz')).body.checks.redis).toBe('ok');
  });
});
