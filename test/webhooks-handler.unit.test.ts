import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseSourceAllow } from '../src/auth/index.js';
import { rulesEngine, CompiledCache, createDecider, createVerifier, createWebhookHandler, type WebhookRequest } from '../src/webhooks/index.js';
import type { BuildRecord, DeliveryDecision, Receipt, StoredRepo } from '../src/store/index.js';
import { SECRET, pushPayload, sign } from '../dev/webhooks.js';

/**
 * The webhook handler through its framework-free face (headers and raw body in, status and body
 * out), with the real verifier and decider and the intake's storage held in memory: what each
 * delivery is answered, and what it stores.
 */

const REPO = 'acme/web';
const config = rulesEngine.normalise({ repository: REPO, image: 'localhost:5000/acme/web', rules: [{ name: 'edge', source: 'branch', match: 'main', tags: ['edge'] }] });
const stored: StoredRepo = { repo: REPO, config: config, version: 'v1', updatedAt: '', updatedBy: 'admin' };

function intake(o: { own?: Record<string, string>; failing?: boolean; replayedAfter?: number } = {}) {
  const recorded: DeliveryDecision[] = [];
  const queued: { builds: BuildRecord[]; receipt: Receipt }[] = [];
  const handler = createWebhookHandler({
    verify: createVerifier({ shared: SECRET, own: async (repo) => o.own?.[repo] ?? null }),
    decide: createDecider({
      repos: { get: async (r) => (r === REPO ? stored : null), recent: async (r) => (r === REPO ? stored : null), guard: () => ({ key: 'k', field: 'f', value: 'v1' }) },
      engine: rulesEngine,
      cache: new CompiledCache(),
      sources: parseSourceAllow('github.com'),
      replayWindowMs: 3_600_000,
    }),
    enqueue: async (builds, opts) => {
      if (o.failing) throw new Error('Connection is closed.');
      if (queued.some((q) => q.receipt.key === opts.receipt.key)) return { outcome: 'duplicate', superseded: [] };
      if (o.replayedAfter && opts.receipt.newest && opts.receipt.newest.value < o.replayedAfter) return { outcome: 'replayed', superseded: [], newest: o.replayedAfter };
      queued.push({ builds, receipt: opts.receipt });
      return { outcome: 'queued', superseded: [] };
    },
    deliveries: {
      recordOnce: async (d) => {
        if (recorded.some((r) => r.deliveryId === d.deliveryId)) return 'duplicate';
        recorded.push(d);
        return 'recorded';
      },
      receipt: (d, pushedAt) => ({ key: `delivery:${d.deliveryId}`, ttlMs: 1, value: JSON.stringify(d), journal: { key: 'j', cap: 1 }, mark: null, newest: pushedAt === null ? null : { key: 'p', field: d.ref!, value: pushedAt } }),
    },
    log: pino({ level: 'silent' }),
    clock: () => new Date(),
  });
  return { handler, recorded, queued };
}

function delivery(payload: unknown, o: { id?: string; event?: string; secret?: string | null; raw?: string; type?: string } = {}): WebhookRequest {
  const body = Buffer.from(o.raw ?? JSON.stringify(payload));
  const headers: Record<string, string> = { 'content-type': o.type ?? 'application/json', 'x-github-event': o.event ?? 'push', 'x-github-delivery': o.id ?? `d-${Math.random().toString(36).slice(2)}` };
  if (o.secret !== null) headers['x-hub-signature-256'] = sign(body, o.secret ?? SECRET);
  return { headers, body };
}

const push = (over: Record<string, unknown> = {}) => ({ ...pushPayload({ repo: REPO, ref: 'refs/heads/main', sha: 'a'.repeat(40) }), ...over });

describe('the webhook handler', () => {
  it('answers a signed push 202 with the builds the rules make, queued with the delivery\'s receipt', async () => {
    const { handler, queued } = intake();
    const answer = await handler(delivery(push(), { id: 'd-1' }));
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ deliveryId: 'd-1', builds: [expect.any(String)], skipped: [], warnings: [] });
    expect(queued).toHaveLength(1);
    expect(queued[0]!.builds[0]).toMatchObject({ repo: REPO, ref: 'refs/heads/main', sha: 'a'.repeat(40), tags: ['edge'], deliveryId: 'd-1' });
    expect(queued[0]!.receipt.key).toBe('delivery:d-1');
  });

  it('refuses what is unsigned or signed with another secret (401) and stores nothing, in the documented order', async () => {
    const { handler, queued, recorded } = intake({ own: { [REPO]: 'the-repository-own-secret' } });
    expect((await handler(delivery(push(), { secret: null }))).body).toMatchObject({ code: 'unsigned' });
    // the repository has its own secret: the shared one no longer signs its pushes
    expect(await handler(delivery(push()))).toMatchObject({ status: 401, body: { code: 'bad_signature' } });
    expect((await handler(delivery(push(), { secret: 'the-repository-own-secret' }))).status).toBe(202);
    // malformed but unsigned: 401 before 400; signed: the body's problem
    expect((await handler(delivery(null, { raw: '{nope', secret: 'wrong' }))).status).toBe(401);
    expect(await handler(delivery(null, { raw: '{nope' }))).toMatchObject({ status: 400, body: { code: 'malformed' } });
    expect((await handler(delivery(push(), { type: 'text/plain' }))).status).toBe(415);
    expect(queued).toHaveLength(1);
    expect(recorded).toEqual([]);
  });

  it('answers a redelivery 200 duplicate, queueing nothing more', async () => {
    const { handler, queued } = intake();
    expect((await handler(delivery(push(), { id: 'd-2' }))).status).toBe(202);
    expect(await handler(delivery(push(), { id: 'd-2' }))).toEqual({ status: 200, body: { deliveryId: 'd-2', duplicate: true } });
    expect(queued).toHaveLength(1);
  });

  it('records what it ignores, and why: unknown repositories, deleted refs, skip markers, foreign clone URLs, replays', async () => {
    const { handler, recorded, queued } = intake({ replayedAfter: Date.now() + 60_000 });
    const cases: [unknown, RegExp][] = [
      [pushPayload({ repo: 'acme/unknown', ref: 'refs/heads/main' }), /^unknown repository acme\/unknown/],
      [push({ deleted: true, after: '0'.repeat(40) }), /^deleted ref/],
      [push({ head_commit: { ...(push().head_commit as object), message: 'docs [skip ci]' } }), /\[skip ci\] in the head commit message/],
      [push({ repository: { ...(push().repository as object), clone_url: 'https://github.com/rival/web.git' } }), /^source refused/],
      [push({ repository: { ...(push().repository as object), pushed_at: Math.floor(Date.now() / 1000) - 7200 } }), /longer ago than the 60 min replay window/],
      [push({ repository: { ...(push().repository as object), pushed_at: Math.floor(Date.now() / 1000) } }), /before refs\/heads\/main's newest accepted push/],
    ];
    for (const [payload, why] of cases) {
      const answer = await handler(delivery(payload));
      expect(answer.status).toBe(202);
      expect(answer.body).toMatchObject({ builds: [], ignored: expect.stringMatching(why) });
    }
    expect(recorded.map((r) => r.ignored)).toEqual(cases.map(([, why]) => expect.stringMatching(why)));
    expect(queued).toEqual([]);
  });

  it('answers 503 (never 202) when storage fails, so GitHub redelivers', async () => {
    const { handler } = intake({ failing: true });
    expect(await handler(delivery(push()))).toMatchObject({ status: 503, body: { code: 'unavailable', error: expect.stringMatching(/try again/) } });
  });
});
