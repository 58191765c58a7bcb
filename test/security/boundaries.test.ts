import { rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBuildLog } from '../../src/builders/index.js';
import { buildKeys, encodeBuild, type BuildRecord } from '../../src/store/index.js';
import { BASE, REGISTRY, deleteRegistryRepo, git, gitHttpServer, makeRepo } from '../../dev/builders.js';
import { eventually } from '../../dev/deploy.js';
import { startSlipway, type Slipway } from '../support/slipway.js';
import { ADMIN, SECRET, api, deliver, pushPayload } from '../../dev/webhooks.js';

/**
 * Trust boundaries attacked through a real slipway (serve + worker on real Redis, Docker, registry
 * and git): each attack is refused with a clear error and changes nothing. docs/security.md lists
 * every boundary and the test that attacks it.
 */

const run = Date.now().toString(36);
const REPO = `acme/guarded-${run}`;
const IMAGE = `${REGISTRY}/slipway-test/guarded-${run}`;
let slipway: Slipway;
let url: string;
const tokens: Record<'viewer' | 'developer' | 'deployer', string> = { viewer: '', developer: '', deployer: '' };
const dirs: string[] = [];
const METRICS_TOKEN = `metrics-${run}`;

function config(over: { image?: string; productionProtected?: boolean; replicas?: number; rules?: string; extra?: string } = {}): string {
  return [
    `repository: ${REPO}`,
    `image: ${over.image ?? IMAGE}`,
    'environments:',
    '  staging: { service: guarded-staging-' + run + ', replicas: 1, ports: ["18291:8080"] }',
    `  production: { service: guarded-prod-${run}, replicas: ${over.replicas ?? 4}, ports: ["18292:8080"], promote_from: staging, protected: ${over.productionProtected ?? true} }`,
    ...(over.extra ? [over.extra] : []),
    'rules:',
    over.rules ?? '  - { name: edge, source: branch, match: main, tags: [edge], deploy: staging }',
    '',
  ].join('\n');
}

/** Runs `attack` while polling /healthz: every probe must answer, proving the event loop never froze for long. */
async function healthyWhile<T>(attack: Promise<T>): Promise<{ result: T; probes: number }> {
  let done = false;
  let probes = 0;
  const probing = (async () => {
    while (!done) {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
      probes++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    return { result: await attack, probes };
  } finally {
    done = true;
    await probing;
  }
}

beforeAll(async () => {
  slipway = await startSlipway({ name: 'security', secret: SECRET, adminToken: ADMIN, env: { SLIPWAY_METRICS_TOKEN: METRICS_TOKEN } });
  url = slipway.serve.url;
  for (const role of ['viewer', 'developer', 'deployer'] as const) {
    const created = await api(url, 'POST', '/api/tokens', { json: { name: `${role}-${run}`, role } });
    expect(created.status).toBe(201);
    tokens[role] = (created.body as { token: string }).token;
  }
  expect((await api(url, 'PUT', `/api/repos/${REPO}`, { text: config() })).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await slipway?.stop();
  await deleteRegistryRepo(IMAGE);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('protected means protected', () => {
  const stored = async () => (await api(url, 'GET', `/api/repos/${REPO}`)).body as { image: string; environments: Record<string, { protected: boolean; replicas: number }> };

  it('a developer cannot unprotect production (the confirmed attack): 403 naming the field, nothing stored', async () => {
    const res = await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.developer, text: config({ productionProtected: false }) });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ errors: [{ path: 'environments.production.protected', message: expect.stringMatching(/protected environment production needs the deployer role/) }] });
    expect((await stored()).environments.production!.protected).toBe(true);
    // …so the deploy that the unprotecting was for is still refused.
    const deploy = await api(url, 'POST', `/api/repos/${REPO}/environments/production/deploy`, { token: tokens.developer, json: { digest: `sha256:${'a'.repeat(64)}` } });
    expect(deploy.status).toBe(403);
  });

  it.each([
    ['any field of a protected environment', { replicas: 1 }, 'environments.production.replicas'],
    ['the image of a repository with one', { image: `${REGISTRY}/elsewhere/app` }, 'image'],
    ['its builder', { extra: 'builder: { timeout: 5m }' }, 'builder.timeout'],
    ['a new protected environment', { extra: `  canary: { service: guarded-canary-${run}, protected: true }` }, 'environments.canary.service'],
  ])('a developer cannot change %s', async (_what, over, field) => {
    const before = await stored();
    const res = await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.developer, text: config(over) });
    expect(res.status).toBe(403);
    expect((res.body as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain(field);
    expect(await stored()).toEqual(before);
  });

  it('a developer still edits rules and unprotected environments; a deployer edits production, and the audit log keeps the diff', async () => {
    const rules = '  - { name: edge, source: branch, match: main, tags: [edge, "{sha:7}"], deploy: staging }';
    expect((await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.developer, text: config({ rules }) })).status).toBe(200);
    const res = await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.deployer, text: config({ rules, replicas: 2 }) });
    expect(res.status).toBe(200);
    expect((await stored()).environments.production!.replicas).toBe(2);
    const audit = (await api(url, 'GET', '/api/audit?limit=20')).body as { entries: { actor: string; action: string; changes?: string[] }[] };
    const [latest, previous] = audit.entries.filter((e) => e.action === 'repo.update');
    expect(latest).toMatchObject({ actor: `deployer-${run}`, changes: ['environments.production.replicas: 4 → 2'] });
    expect(previous).toMatchObject({ actor: `developer-${run}` });
    expect(previous!.changes).toEqual([expect.stringMatching(/^rules: \[.*"tags":\["edge"\].*\] → \[.*"tags":\["edge","\{sha:7\}"\].*\]$/)]);
  });
});

describe('no input freezes slipway', () => {
  const HOSTILE = '/^(a+)+$/';
  const REF = `refs/heads/${'a'.repeat(34)}b`;

  it('a viewer previewing the catastrophic regex (the confirmed attack) gets an answer, and /healthz answers meanwhile', async () => {
    const doc = { repository: REPO, image: IMAGE, rules: [{ name: 'evil', source: 'branch', match: HOSTILE, tags: ['x'] }] };
    const { result } = await healthyWhile(api(url, 'POST', '/api/rules/preview', { token: tokens.viewer, json: { config: doc, ref: REF } }));
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ builds: [], skipped: [{ rule: 'evil' }] });
  });

  it('the same regex stored by a developer runs on every push without stalling intake', async () => {
    const rules = `  - { name: evil, source: branch, match: "${HOSTILE}", tags: [x] }\n  - { name: edge, source: branch, match: main, tags: [edge] }`;
    expect((await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.developer, text: config({ rules, replicas: 2 }) })).status).toBe(200);
    const payload = pushPayload({ repo: REPO, ref: REF, sha: 'c'.repeat(40) });
    const { result } = await healthyWhile(deliver(url, { event: 'push', payload }));
    expect(result.status).toBe(202);
    expect(result.body.builds).toEqual([]);
  });

  it('a regex the linear-time engine cannot express is refused when stored, naming the rule', async () => {
    const rules = '  - { name: look, source: branch, match: "/^(?!release-)/", tags: [x] }';
    const res = await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.developer, text: config({ rules, replicas: 2 }) });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ errors: [{ path: 'rules[0].match', message: expect.stringMatching(/lookahead, lookbehind and backreferences are not available/) }] });
  });

  it('a .dockerignore symlinked to /dev/zero fails its build with a clear reason, and the worker goes on building', async () => {
    const name = `acme/ignore-${run}`;
    const image = `${REGISTRY}/slipway-test/ignore-${run}`;
    expect((await api(url, 'PUT', `/api/repos/${name}`, { text: `repository: ${name}\nimage: ${image}\n` })).status).toBe(200);
    const repo = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo built\n` });
    dirs.push(repo.dir);
    await symlink('/dev/zero', path.join(repo.dir, '.dockerignore'));
    git(repo.dir, 'add', '-A');
    git(repo.dir, 'commit', '-q', '-m', 'a hostile .dockerignore');
    const server = await gitHttpServer(path.dirname(repo.dir));
    try {
      const build = async () => {
        const payload = pushPayload({ repo: name, ref: 'refs/heads/main', sha: git(repo.dir, 'rev-parse', 'HEAD') });
        (payload.repository as Record<string, unknown>).clone_url = `${server.url}/${path.basename(repo.dir)}`;
        const id = (await deliver(url, { event: 'push', payload })).body.builds[0] as string;
        return eventually(async () => {
          const r = (await api(url, 'GET', `/api/builds/${id}`)).body as BuildRecord;
          return ['succeeded', 'failed'].includes(r.status) ? r : null;
        }, 120_000);
      };
      const { result: hostile } = await healthyWhile(build());
      expect(hostile).toMatchObject({ status: 'failed', error: '.dockerignore must be a regular file, not a symbolic link' });
      await rm(path.join(repo.dir, '.dockerignore'));
      git(repo.dir, 'commit', '-q', '-a', '-m', 'no .dockerignore');
      expect(await build()).toMatchObject({ status: 'succeeded' });
    } finally {
      await server.close();
      await deleteRegistryRepo(image);
    }
  });
});

describe('builds stay in their lane', () => {
  it('a config asking for shared isolation is refused unless the operator allows it', async () => {
    const res = await api(url, 'PUT', `/api/repos/acme/shared-${run}`, { token: tokens.developer, text: `repository: acme/shared-${run}\nimage: ${IMAGE}\nbuilder: { isolation: shared }\n` });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ errors: [{ path: 'builder.isolation', message: expect.stringMatching(/SLIPWAY_ALLOW_SHARED_BUILDS/) }] });
    expect((await api(url, 'GET', `/api/repos/acme/shared-${run}`)).status).toBe(404);
  });
});

describe('connections and answers', () => {
  it('one token holds a bounded number of open streams: of 200 followers, the ones past the limit get 429', { timeout: 60_000 }, async () => {
    const controllers = Array.from({ length: 200 }, () => new AbortController());
    const answers = await Promise.all(
      controllers.map((ac) => fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${tokens.viewer}`, accept: 'text/event-stream' }, signal: ac.signal })),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(180);
    const refused = answers.find((r) => r.status === 429)!;
    expect(await refused.json()).toMatchObject({ code: 'too_many_streams', error: expect.stringMatching(/at most 20/) });
    // Another token is not affected, and closing streams frees them.
    const other = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${tokens.developer}`, accept: 'text/event-stream' } });
    expect(other.status).toBe(200);
    await other.body?.cancel();
    for (const ac of controllers) ac.abort();
    await eventually(async () => {
      const again = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${tokens.viewer}`, accept: 'text/event-stream' } });
      await again.body?.cancel();
      return again.status === 200;
    }, 10_000, 100);
  });

  it('build-log followers share Redis connections: 60 followers of three tokens, at most SLIPWAY_LOG_READERS (2) log readers', { timeout: 60_000 }, async () => {
    const redis = new Redis(slipway.redis.url);
    const id = `b-followed-${run}`;
    const now = new Date().toISOString();
    const build: BuildRecord = {
      id, repo: REPO, ref: 'refs/heads/main', sha: 'f'.repeat(40), rules: ['edge'], tags: ['edge'], image: IMAGE, status: 'running', digest: null, error: null,
      queuedAt: now, startedAt: now, finishedAt: null, deployments: [], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: [],
      cloneUrl: null, deliveryId: null, trigger: 'manual', by: 'admin', supersededBy: null, warnings: [],
    };
    const controllers: AbortController[] = [];
    try {
      await redis.hset(buildKeys.record(id), ...encodeBuild(build));
      const followers: Response[] = [];
      for (let t = 0; t < 3; t++) {
        const created = await api(url, 'POST', '/api/tokens', { json: { name: `follower-${t}-${run}`, role: 'viewer' } });
        const token = (created.body as { token: string }).token;
        for (let i = 0; i < 20; i++) {
          const ac = new AbortController();
          controllers.push(ac);
          followers.push(await fetch(`${url}/api/builds/${id}/log`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: ac.signal }));
        }
      }
      expect(followers.map((r) => r.status)).toEqual(followers.map(() => 200));
      const readers = async () => ((await redis.client('LIST')) as string).split('\n').filter((line) => line.includes(' name=slipway:log-reader ')).length;
      await eventually(async () => (await readers()) >= 1, 10_000, 50);
      // Still followed live: the last follower sees a line written now.
      const log = openBuildLog(redis, id);
      log.line('still followed');
      await log.flush();
      const body = followers.at(-1)!.body!.getReader();
      let text = '';
      while (!text.includes('data: still followed')) text += new TextDecoder().decode((await body.read()).value);
      expect(await readers()).toBeLessThanOrEqual(2);
    } finally {
      for (const ac of controllers) ac.abort();
      redis.disconnect();
    }
  });

  it('/metrics answers only with SLIPWAY_METRICS_TOKEN', async () => {
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${tokens.viewer}` } })).status).toBe(401);
    const ok = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('slipway_');
  });

  it('a 26 MB webhook body through Node\'s own fetch gets a readable 413, not a reset', async () => {
    const res = await fetch(`${url}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: Buffer.alloc(26 * 1024 * 1024, 32) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'too_large' });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('repeated failed authentication from one address is slowed with 429 and Retry-After', async () => {
    const small = await startSlipway({ name: 'throttle', secret: SECRET, adminToken: ADMIN, env: { SLIPWAY_AUTH_FAILURES_PER_MINUTE: '5' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await api(small.serve.url, 'GET', '/api/me', { token: `slw_guess${i}` })).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
      const slowed = await fetch(`${small.serve.url}/api/me`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(slowed.status).toBe(429);
      expect(Number(slowed.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await small.stop();
    }
  });

  it('names and paths that would reach event streams cannot hold newlines', async () => {
    const rules = '  - { name: edge, source: branch, match: main, tags: [x], context: "a\\nevent: end" }';
    const res = await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.deployer, text: config({ rules, replicas: 2 }) });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ errors: [{ path: 'rules[0].context', message: expect.stringMatching(/control characters/) }] });
  });
});

describe('sources and webhooks', () => {
  it.each([
    ['another repository on GitHub', 'https://github.com/rival/app.git', /not acme\/guarded-\w+'s own repository on github\.com/],
    ['this machine\'s files', 'file:///etc', /is not an allowed source \(SLIPWAY_SOURCE_ALLOW: /],
    ['a loopback service', 'http://localhost:6379/x.git', /is not an allowed source/],
    ['a host nobody allowed', 'ssh://git@evil.example/acme/guarded.git', /is not an allowed source/],
  ])('a signed push whose clone_url points at %s builds nothing and says why', async (_what, cloneUrl, why) => {
    const payload = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: 'e'.repeat(40) });
    (payload.repository as Record<string, unknown>).clone_url = cloneUrl;
    const res = await deliver(url, { event: 'push', payload });
    expect(res.status).toBe(202);
    expect(res.body.builds).toEqual([]);
    expect(res.body.ignored).toMatch(why);
    expect(res.body.ignored).toMatch(/^source refused: /);
  });

  it('a captured push replayed under a new delivery id builds nothing; the same push fresh does', async () => {
    const replay = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: 'f'.repeat(40) });
    (replay.repository as Record<string, unknown>).pushed_at = Math.floor(Date.now() / 1000) - 2 * 3600;
    const res = await deliver(url, { event: 'push', payload: replay });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ builds: [], ignored: expect.stringMatching(/^replayed: pushed at .*, longer ago than the 60 min replay window/) });
    const delivery = await api(url, 'GET', `/api/deliveries/${res.id}`);
    expect(delivery.body).toMatchObject({ ignored: expect.stringMatching(/^replayed/) });
    const fresh = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: 'f'.repeat(40) });
    (fresh.repository as Record<string, unknown>).pushed_at = Math.floor(Date.now() / 1000);
    expect((await deliver(url, { event: 'push', payload: fresh })).body.builds).toHaveLength(1);
  });

  it('a push older than the newest accepted push of its ref, replayed within the window, builds nothing', async () => {
    // later than the pushes of main the tests before made
    const now = Math.floor(Date.now() / 1000) + 60;
    const captured = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: 'a'.repeat(40) });
    (captured.repository as Record<string, unknown>).pushed_at = now;
    const first = await deliver(url, { event: 'push', payload: captured });
    expect(first.body.builds).toHaveLength(1);
    const newer = pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: 'b'.repeat(40) });
    (newer.repository as Record<string, unknown>).pushed_at = now + 1;
    expect((await deliver(url, { event: 'push', payload: newer })).body.builds).toHaveLength(1);
    const buildsBefore = await ids(REPO);

    const res = await deliver(url, { event: 'push', payload: captured });
    expect(res.id).not.toBe(first.id);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      deliveryId: res.id,
      builds: [],
      ignored: expect.stringMatching(/^replayed: pushed at .*, before refs\/heads\/main's newest accepted push \(pushed at /),
    });
    expect((await api(url, 'GET', `/api/deliveries/${res.id}`)).body).toMatchObject({ outcome: 'ignored', builds: [], ignored: expect.stringMatching(/^replayed/) });
    expect(await ids(REPO)).toEqual(buildsBefore);
  });

  it.each([
    ['file:///', /is not an allowed source/],
    ['https://github.com/rival/app.git', /is not acme\/guarded-\w+'s own repository/],
    ['https://someone:pw@github.com/acme/x.git', /\*\*\*@/],
    ['http://evil.example/x.git', /is not an allowed source/],
  ])('a config whose source.url is %s is refused at source.url', async (source, why) => {
    const before = (await api(url, 'GET', `/api/repos/${REPO}`)).body;
    const res = await api(url, 'PUT', `/api/repos/${REPO}`, { token: tokens.deployer, text: config({ replicas: 2, extra: `source: { url: "${source}" }` }) });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ errors: [{ path: 'source.url', message: expect.stringMatching(why) }] });
    expect((await api(url, 'GET', `/api/repos/${REPO}`)).body).toEqual(before);
  });
});

describe('per-repository webhook secrets', () => {
  const own = `acme/signed-${run}`;
  const neighbour = `acme/unsigned-${run}`;
  const doc = (repo: string) => `repository: ${repo}\nimage: ${REGISTRY}/${repo}/web\nrules:\n  - { name: edge, source: branch, match: main, tags: [edge] }\n`;
  let secret = '';

  beforeAll(async () => {
    for (const repo of [own, neighbour]) expect((await api(url, 'PUT', `/api/repos/${repo}`, { text: doc(repo) })).status).toBe(200);
  });

  it('only an admin gives a repository its own secret; it is answered once and never shown again', async () => {
    const refused = await api(url, 'PUT', `/api/repos/${own}/settings`, { token: tokens.deployer, json: { webhook_secret: 'generate' } });
    expect(refused.status).toBe(403);
    expect((await api(url, 'GET', `/api/repos/${own}/settings`, { token: tokens.viewer })).body).toMatchObject({ webhookSecret: 'shared' });
    const made = await api(url, 'PUT', `/api/repos/${own}/settings`, { json: { webhook_secret: 'generate' } });
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject({ repo: own, webhookSecret: 'own', webhookSecretValue: expect.stringMatching(/^[0-9a-f]{64}$/) });
    secret = made.body.webhookSecretValue;
    const seen = await api(url, 'GET', `/api/repos/${own}/settings`, { token: tokens.viewer });
    expect(seen.body).toMatchObject({ webhookSecret: 'own' });
    expect(JSON.stringify(seen.body)).not.toContain(secret);
    const audit = (await api(url, 'GET', '/api/audit?limit=20')).body as { entries: { action: string; repo: string; changes?: string[] }[] };
    const entry = audit.entries.find((e) => e.action === 'repo.settings' && e.repo === own)!;
    expect(entry.changes).toEqual(['webhook_secret: shared → own (new)']);
    expect(JSON.stringify(audit)).not.toContain(secret);
  });

  it('a push for that repository signed with the shared secret, or another repository\'s, is 401 and records nothing', async () => {
    const before = await ids(own);
    const forged = await deliver(url, { event: 'push', payload: pushPayload({ repo: own, ref: 'refs/heads/main', sha: 'c'.repeat(40) }) });
    expect(forged.status).toBe(401);
    expect(forged.body).toMatchObject({ code: 'bad_signature', error: expect.stringMatching(/the repository's own, when it has one/) });
    expect((await api(url, 'GET', `/api/deliveries/${forged.id}`)).status).toBe(404);
    const neighbours = await api(url, 'PUT', `/api/repos/${neighbour}/settings`, { json: { webhook_secret: 'neighbour-secret-of-twenty-chars' } });
    expect(neighbours.status).toBe(200);
    expect(neighbours.body.webhookSecretValue).toBeUndefined();
    const crossed = await deliver(url, { event: 'push', secret: 'neighbour-secret-of-twenty-chars', payload: pushPayload({ repo: own, ref: 'refs/heads/main', sha: 'c'.repeat(40) }) });
    expect(crossed.status).toBe(401);
    expect(await ids(own)).toEqual(before);

    const signed = await deliver(url, { event: 'push', secret, payload: pushPayload({ repo: own, ref: 'refs/heads/main', sha: 'c'.repeat(40) }) });
    expect(signed.status).toBe(202);
    expect(signed.body.builds).toHaveLength(1);
    const theirs = await deliver(url, { event: 'push', secret: 'neighbour-secret-of-twenty-chars', payload: pushPayload({ repo: neighbour, ref: 'refs/heads/main', sha: 'd'.repeat(40) }) });
    expect(theirs.status).toBe(202);
    // a repository without its own secret still takes the shared one
    expect((await deliver(url, { event: 'push', payload: pushPayload({ repo: REPO, ref: 'refs/heads/feature', sha: 'e'.repeat(40) }) })).status).toBe(202);
  });

  it('back to the shared secret with null; a too-short secret is refused, naming the field', async () => {
    const short = await api(url, 'PUT', `/api/repos/${neighbour}/settings`, { json: { webhook_secret: 'short' } });
    expect(short.status).toBe(422);
    expect(short.body).toMatchObject({ errors: [{ path: 'webhook_secret', message: expect.stringMatching(/at least 20 characters/) }] });
    expect((await api(url, 'PUT', `/api/repos/${neighbour}/settings`, { json: { webhook_secret: null } })).body).toMatchObject({ webhookSecret: 'shared' });
    expect((await deliver(url, { event: 'push', payload: pushPayload({ repo: neighbour, ref: 'refs/heads/main', sha: 'f'.repeat(40) }) })).status).toBe(202);
  });
});

async function ids(repo: string): Promise<string[]> {
  return ((await api(url, 'GET', `/api/builds?repo=${repo}`)).body as { builds: { id: string }[] }).builds.map((b) => b.id);
}

describe('registries, services and ports', () => {
  const other = `acme/neighbour-${run}`;
  const doc = (image: string, service: string, port: number) =>
    `repository: ${other}\nimage: ${image}\nenvironments:\n  staging: { service: ${service}, ports: ["${port}:8080"] }\n`;

  it('below admin, an image must lie under the repository\'s own prefix', async () => {
    const res = await api(url, 'PUT', `/api/repos/${other}`, { token: tokens.developer, text: doc(`${REGISTRY}/slipway/node`, `neighbour-${run}`, 18295) });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ errors: [{ path: 'image', message: expect.stringMatching(new RegExp(`must be ${REGISTRY}/${other} or under it`)) }] });
    expect((await api(url, 'GET', `/api/repos/${other}`)).status).toBe(404);
    const own = await api(url, 'PUT', `/api/repos/${other}`, { token: tokens.developer, text: doc(`${REGISTRY}/${other}/web`, `neighbour-${run}`, 18295) });
    expect(own.status).toBe(200);
  });

  it.each([
    ['service name', () => doc(`${REGISTRY}/${other}/web`, `guarded-prod-${run}`, 18296), `environments.staging.service`, /service guarded-prod-\w+ belongs to acme\/guarded-\w+ \(environment production\)/],
    ['host port', () => doc(`${REGISTRY}/${other}/web`, `neighbour-${run}`, 18291), `environments.staging.ports[0]`, /host port 18291\/tcp belongs to acme\/guarded-\w+ \(environment staging\)/],
  ])('a %s another repository holds is 409 naming the holder, and nothing changes', async (_what, text, path, why) => {
    const before = (await api(url, 'GET', `/api/repos/${other}`)).body;
    const res = await api(url, 'PUT', `/api/repos/${other}`, { text: text() });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ errors: [{ path, message: expect.stringMatching(why) }] });
    expect((await api(url, 'GET', `/api/repos/${other}`)).body).toEqual(before);
  });

  it('an admin maps another prefix; below admin, images then lie under that one, not the default', async () => {
    const mapped = `acme/mapped-${run}`;
    const text = (image: string) => `repository: ${mapped}\nimage: ${image}\n`;
    const refused = await api(url, 'PUT', `/api/repos/${mapped}/settings`, { token: tokens.deployer, json: { image_prefix: `${REGISTRY}/platform/mapped-${run}` } });
    expect(refused.status).toBe(403);
    const bad = await api(url, 'PUT', `/api/repos/${mapped}/settings`, { json: { image_prefix: `${REGISTRY}/Platform:latest` } });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ errors: [{ path: 'image_prefix' }] });
    const set = await api(url, 'PUT', `/api/repos/${mapped}/settings`, { json: { image_prefix: `${REGISTRY}/platform/mapped-${run}` } });
    expect(set.body).toMatchObject({ imagePrefix: `${REGISTRY}/platform/mapped-${run}`, defaultImagePrefix: `${REGISTRY}/${mapped}` });

    const underDefault = await api(url, 'PUT', `/api/repos/${mapped}`, { token: tokens.developer, text: text(`${REGISTRY}/${mapped}/web`) });
    expect(underDefault.status).toBe(403);
    expect(underDefault.body).toMatchObject({ errors: [{ path: 'image', message: expect.stringContaining(`must be ${REGISTRY}/platform/mapped-${run} or under it`) }] });
    expect((await api(url, 'GET', `/api/repos/${mapped}`)).status).toBe(404);
    const underMapped = await api(url, 'PUT', `/api/repos/${mapped}`, { token: tokens.developer, text: text(`${REGISTRY}/platform/mapped-${run}/web`) });
    expect(underMapped.status).toBe(200);
  });

  it('configs racing for the same host port: one is stored, each other one is 409 naming it', async () => {
    const racers = Array.from({ length: 8 }, (_, i) => `acme/racer-${i}-${run}`);
    const text = (repo: string) => `repository: ${repo}\nimage: ${REGISTRY}/${repo}/web\nenvironments:\n  staging: { service: ${repo.split('/')[1]}, ports: ["18297:8080"] }\n`;
    const answers = await Promise.all(racers.map((repo) => api(url, 'PUT', `/api/repos/${repo}`, { text: text(repo) })));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    const won = racers[answers.findIndex((r) => r.status === 200)]!;
    for (const [i, r] of answers.entries()) {
      if (racers[i] === won) continue;
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ errors: [{ path: 'environments.staging.ports[0]', message: `host port 18297/tcp belongs to ${won} (environment staging)` }] });
      expect((await api(url, 'GET', `/api/repos/${racers[i]}`)).status).toBe(404);
    }
    // the port is free again once its holder gives it up
    const lost = racers.find((r) => r !== won)!;
    expect((await api(url, 'PUT', `/api/repos/${won}`, { text: `repository: ${won}\nimage: ${REGISTRY}/${won}/web\n` })).status).toBe(200);
    expect((await api(url, 'PUT', `/api/repos/${lost}`, { text: text(lost) })).status).toBe(200);
  });
});
