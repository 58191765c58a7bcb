import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BuildNotFound, ConflictError, InvalidSubmission, Lanes, LaneWorker, type LaneWorkerOptions } from '../src/queue/index.js';
import { unpackBuildEvent, type BuildRecord, type BuildStatus, type PackedBuildEvent } from '../src/store/index.js';
import { LaneScripts } from '../src/queue/scripts.js';
import { newBuild, recordingRunner, runEvents, waitFor, type RunEvent } from './support/lanes.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

const log = pino({ level: 'silent' });
let srv: TestRedis;
let redis: Redis;
let lanes: Lanes;
let changes: BuildRecord[];
let workers: LaneWorker[];

beforeAll(async () => {
  srv = await startRedis();
  redis = new Redis(srv.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});
beforeEach(async () => {
  await redis.flushall();
  changes = [];
  workers = [];
  lanes = new Lanes({ redis, log, onChange: (r) => changes.push(r) });
});
afterEach(async () => {
  await Promise.all(workers.map((w) => w.close(0)));
  await lanes.close();
});

async function startWorker(o: Partial<LaneWorkerOptions> = {}): Promise<LaneWorker> {
  const w = new LaneWorker({
    redis,
    runner: recordingRunner(redis, o.id ?? 'main'),
    slots: 1,
    log,
    lockMs: 2_000,
    stalledMs: 1_000,
    reconcileMs: 300,
    onChange: (r) => changes.push(r),
    ...o,
  });
  workers.push(w);
  await w.start();
  return w;
}

const get = async (id: string) => (await lanes.store.get(id))!;
const until = (id: string, status: BuildStatus) =>
  waitFor(async () => ((await lanes.store.get(id))?.status === status ? true : undefined), 20_000, `${id} to be ${status}`);
const starts = (events: RunEvent[]) => events.filter((e) => e.event === 'start').map((e) => e.id);

/** Highest number of builds of `ids` running at the same time, from the runner's own start/stop record. */
function maxOverlap(events: RunEvent[], ids: Set<string>): number {
  let now = 0;
  let max = 0;
  for (const e of events) {
    if (!ids.has(e.id)) continue;
    now += e.event === 'start' ? 1 : -1;
    max = Math.max(max, now);
  }
  return max;
}

describe('lanes', () => {
  it('stores submitted builds queued, newest first, and lists them by repo and status', async () => {
    const a1 = newBuild('acme/web', { ref: 'refs/heads/a' });
    const a2 = newBuild('acme/web', { ref: 'refs/heads/b' });
    const b1 = newBuild('acme/api');
    await lanes.submit([a1]);
    await lanes.submit([a2]);
    await lanes.submit([b1]);
    expect((await lanes.store.list()).map((r) => r.id)).toEqual([b1.id, a2.id, a1.id]);
    expect((await lanes.store.list({ repo: 'acme/web' })).map((r) => r.id)).toEqual([a2.id, a1.id]);
    expect((await lanes.store.list({ status: 'queued', limit: 2 })).map((r) => r.id)).toEqual([b1.id, a2.id]);
    expect(await lanes.store.list({ repo: 'acme/web', status: 'succeeded' })).toEqual([]);
    expect(await get(a1.id)).toEqual(a1);
    expect(changes.map((r) => [r.id, r.status])).toEqual([[a1.id, 'queued'], [a2.id, 'queued'], [b1.id, 'queued']]);
  });

  it('rejects bad submissions whole and stores nothing', async () => {
    const ok = newBuild('acme/web');
    await expect(lanes.submit([ok, { ...newBuild('acme/web'), status: 'running' }])).rejects.toMatchObject({
      code: 'invalid_submission',
      path: 'builds[1].status',
    });
    await expect(lanes.submit([ok, { ...newBuild('acme/web'), id: ok.id }])).rejects.toBeInstanceOf(InvalidSubmission);
    await expect(lanes.submit([{ ...ok, repo: 'no-slash' }])).rejects.toMatchObject({ path: 'builds[0].repo' });
    await expect(lanes.submit([ok], { concurrency: 0 })).rejects.toMatchObject({ path: 'concurrency' });
    expect(await lanes.store.list()).toEqual([]);
    await lanes.submit([ok]);
    await expect(lanes.submit([newBuild('acme/web'), { ...ok }])).rejects.toMatchObject({ status: 409, code: 'duplicate_build' });
    expect((await lanes.store.list()).map((r) => r.id)).toEqual([ok.id]);
  });

  it('submits with a receipt once: the receipt is stored, what the submission superseded beside it, a second use changes nothing', async () => {
    const older = newBuild('acme/receipts');
    await lanes.submit([older]);
    const receipt = (value: string) => ({
      key: 'test:receipt:1',
      ttlMs: 60_000,
      value,
      journal: { key: 'test:receipts', cap: 2 },
      mark: { key: 'test:heads', field: 'refs/heads/main', value: 'c'.repeat(40) },
      newest: null,
    });
    const first = newBuild('acme/receipts');
    expect(await lanes.submit([first], { receipt: receipt('{"n":1}') })).toEqual({ outcome: 'queued', superseded: [older.id], aborted: [] });
    expect(await redis.get('test:receipt:1')).toBe('{"n":1}');
    expect(JSON.parse((await redis.get('test:receipt:1:superseded'))!)).toEqual([older.id]);
    expect(await redis.pttl('test:receipt:1')).toBeGreaterThan(50_000);
    expect(await redis.pttl('test:receipt:1:superseded')).toBeGreaterThan(50_000);
    expect(await redis.lrange('test:receipts', 0, -1)).toEqual(['test:receipt:1']);
    expect(await redis.hget('test:heads', 'refs/heads/main')).toBe('c'.repeat(40));

    const again = newBuild('acme/receipts');
    expect(await lanes.submit([again], { receipt: receipt('{"n":2}') })).toEqual({ outcome: 'duplicate', superseded: [], aborted: [] });
    expect(await lanes.store.get(again.id)).toBeNull();
    expect((await get(first.id)).status).toBe('queued');
    expect(await redis.get('test:receipt:1')).toBe('{"n":1}');
    expect(await redis.llen('test:receipts')).toBe(1);
  });

  it('refuses a receipt whose push is older than its ref newest accepted push, also within one batch, and keeps the newest', async () => {
    const receipt = (n: number, pushedAt: number) => ({
      key: `test:replay:${n}`,
      ttlMs: 60_000,
      value: `{"n":${n}}`,
      journal: { key: 'test:replays', cap: 10 },
      mark: null,
      newest: { key: 'test:pushed', field: 'refs/heads/main', value: pushedAt },
    });
    const t = 1_760_000_000_000;
    expect((await lanes.submit([newBuild('acme/replay')], { receipt: receipt(1, t) })).outcome).toBe('queued');
    expect(await redis.hget('test:pushed', 'refs/heads/main')).toBe(String(t));
    // same second as the newest: a second push within it is not a replay
    expect((await lanes.submit([newBuild('acme/replay')], { receipt: receipt(2, t) })).outcome).toBe('queued');
    const old = newBuild('acme/replay');
    expect(await lanes.submit([old], { receipt: receipt(3, t - 60_000) })).toEqual({ outcome: 'replayed', newest: t, superseded: [], aborted: [] });
    expect(await lanes.store.get(old.id)).toBeNull();
    expect(await redis.get('test:replay:3')).toBeNull();
    // one event-loop turn: a newer push and an older one, in that order
    const [newer, older] = [newBuild('acme/replay'), newBuild('acme/replay')];
    const [a, b] = await Promise.all([
      lanes.submit([newer], { receipt: receipt(4, t + 5_000) }),
      lanes.submit([older], { receipt: receipt(5, t + 1_000) }),
    ]);
    expect([a.outcome, b.outcome]).toEqual(['queued', 'replayed']);
    expect(b.newest).toBe(t + 5_000);
    expect(await lanes.store.get(older.id)).toBeNull();
    expect(await redis.hget('test:pushed', 'refs/heads/main')).toBe(String(t + 5_000));
  });

  it('applies submissions made at once in the order they were made, each with its own outcome', async () => {
    const [a, b, c] = [1, 2, 3].map(() => newBuild('acme/batch'));
    await lanes.submit([newBuild('acme/batch', { id: 'batch-taken' })]);
    const results = await Promise.allSettled([
      lanes.submit([a!]),
      lanes.submit([b!]),
      lanes.submit([newBuild('acme/batch', { id: 'batch-taken' })]),
      lanes.submit([c!]),
    ]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.superseded : (r.reason as { code: string }).code))).toEqual([
      ['batch-taken'],
      [a!.id],
      'duplicate_build',
      [b!.id],
    ]);
    expect((await get(b!.id)).supersededBy).toBe(c!.id);
    expect((await get(c!.id)).status).toBe('queued');
  });

  it('splits a burst larger than one group commit into several, in order', async () => {
    const burst = Array.from({ length: 450 }, () => newBuild('acme/burst'));
    const results = await Promise.all(burst.map((b) => lanes.submit([b])));
    expect(results.map((r) => r.superseded)).toEqual(burst.map((_, i) => (i === 0 ? [] : [burst[i - 1]!.id])));
    const stored = await lanes.store.getMany(burst.map((b) => b.id));
    expect(stored.filter((r) => r.status === 'queued').map((r) => r.id)).toEqual([burst[449]!.id]);
    expect(stored.slice(0, -1).map((r) => r.supersededBy)).toEqual(burst.slice(1).map((b) => b.id));

    // Submissions of many builds each: batches close by their number of builds (4,800 builds in one
    // script call would pass Lua more than the 8,000 values it can unpack at once).
    const wide = Array.from({ length: 12 }, (_, s) => Array.from({ length: 400 }, (_, i) => newBuild('acme/wide', { ref: `refs/heads/s${s}-${i}` })));
    const answers = await Promise.all(wide.map((builds) => lanes.submit(builds)));
    expect(answers.map((a) => a.outcome)).toEqual(wide.map(() => 'queued'));
    expect((await lanes.store.getMany(wide.flat().map((b) => b.id))).filter((r) => r.status === 'queued')).toHaveLength(4800);
    const tooMany = Array.from({ length: 401 }, () => newBuild('acme/wide'));
    await expect(lanes.submit(tooMany)).rejects.toMatchObject({ path: 'builds', message: 'at most 400 builds at once (got 401)' });
    expect(await lanes.store.get(tooMany[0]!.id)).toBeNull();
  });

  it('runs one repository first in, first out, one at a time by default', async () => {
    const builds = ['a', 'b', 'c', 'd', 'e'].map((x) => newBuild('acme/web', { ref: `refs/heads/${x}` }));
    for (const b of builds) await lanes.submit([b]);
    await startWorker({ slots: 3 });
    for (const b of builds) await until(b.id, 'succeeded');
    const events = await runEvents(redis);
    expect(starts(events)).toEqual(builds.map((b) => b.id));
    expect(maxOverlap(events, new Set(builds.map((b) => b.id)))).toBe(1);
    const done = await get(builds[0]!.id);
    expect(done.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    const statuses = await waitFor(() => {
      const seen = changes.filter((r) => r.id === done.id).map((r) => r.status);
      return seen.includes('succeeded') ? seen : undefined;
    }, 5_000, 'the succeeded state to be published');
    expect(statuses).toEqual(['queued', 'running', 'succeeded']);
  });

  it("runs up to the repository's concurrency at once, never more", async () => {
    const web = ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => newBuild('acme/web', { ref: `refs/heads/${x}`, build_args: { SLEEP_MS: '150' } }));
    await lanes.submit(web.slice(0, 1), { concurrency: 2 });
    for (const b of web.slice(1)) await lanes.submit([b]);
    await startWorker({ slots: 4 });
    for (const b of web) await until(b.id, 'succeeded');
    const events = await runEvents(redis);
    expect(maxOverlap(events, new Set(web.map((b) => b.id)))).toBe(2);
    // Dispatched in lane order; two that start together may begin in either order.
    const order = starts(events);
    web.forEach((b, i) => expect(Math.abs(order.indexOf(b.id) - i)).toBeLessThanOrEqual(1));
  });

  it('shares the slots round-robin: a flooded repository gets no more turns than a quiet one', async () => {
    const flood = Array.from({ length: 30 }, (_, i) => newBuild('acme/flood', { ref: `refs/heads/f${i}`, build_args: { SLEEP_MS: '60' } }));
    const quiet = Array.from({ length: 5 }, (_, i) => newBuild(`acme/quiet${i}`, { build_args: { SLEEP_MS: '60' } }));
    // The flood may use every slot when alone.
    await lanes.submit(flood.slice(0, 1), { concurrency: 2 });
    for (const b of flood.slice(1)) await lanes.submit([b]);
    for (const b of quiet) await lanes.submit([b]);
    await startWorker({ slots: 2 });
    for (const b of [...quiet, flood.at(-1)!]) await until(b.id, 'succeeded');
    const order = starts(await runEvents(redis));
    const repoOf = new Map([...flood, ...quiet].map((b) => [b.id, b.repo]));
    // The first six turns go to six different repositories: the flood's 30 builds earn it one turn per round.
    expect(new Set(order.slice(0, 6).map((id) => repoOf.get(id))).size).toBe(6);
    const lastQuiet = Math.max(...quiet.map((b) => order.indexOf(b.id)));
    expect(order.slice(0, lastQuiet).filter((id) => repoOf.get(id) === 'acme/flood').length).toBeLessThanOrEqual(1);
    // Within the flood, its own order is kept.
    expect(order.filter((id) => repoOf.get(id) === 'acme/flood')).toEqual(flood.map((b) => b.id));
  });

  it('gives a freed slot to the repository with the fewest running builds, even when a busier one has waited longer', async () => {
    const flood = Array.from({ length: 6 }, (_, i) => newBuild('acme/flood', { ref: `refs/heads/f${i}`, build_args: { SLEEP_MS: '300' } }));
    await lanes.submit(flood.slice(0, 1), { concurrency: 4 });
    for (const b of flood.slice(1)) await lanes.submit([b]);
    await startWorker({ slots: 3 });
    await waitFor(async () => (await lanes.store.list({ status: 'running' })).length === 3 || undefined, 10_000, 'three running');
    // The flood (3 running, room for a 4th) is in the ring ahead of the quiet repository.
    const quiet = newBuild('acme/quiet', { build_args: { SLEEP_MS: '10' } });
    await lanes.submit([quiet]);
    await until(quiet.id, 'succeeded');
    const order = starts(await runEvents(redis));
    expect(new Set(order.slice(0, 3))).toEqual(new Set(flood.slice(0, 3).map((b) => b.id)));
    expect(order[3]).toBe(quiet.id);
  });

  it('with an events channel, submit publishes the records it creates and supersedes itself, exactly as stored, one message per group commit', async () => {
    const channel = 'test:events';
    const sub = redis.duplicate();
    const messages: BuildRecord[][] = [];
    sub.on('message', (_c: string, m: string) => messages.push((JSON.parse(m) as PackedBuildEvent[]).map(unpackBuildEvent)));
    await sub.subscribe(channel);
    const flat = () => messages.flatMap((m) => m.map((r) => [r.id, r.status, r.supersededBy]));
    try {
      const publishing = new Lanes({ redis, log, onChange: (r) => changes.push(r), events: channel });
      const b1 = newBuild('acme/web');
      const b2 = newBuild('acme/web');
      await publishing.submit([b1]);
      expect((await publishing.submit([b2])).superseded).toEqual([b1.id]);
      await waitFor(async () => (messages.length >= 2 ? true : undefined), 10_000, 'two messages');
      expect(flat()).toEqual([
        [b1.id, 'queued', null],
        [b2.id, 'queued', null],
        [b1.id, 'superseded', b2.id],
      ]);
      expect(messages[1]![0]).toEqual(b2);
      expect(messages[1]![1]).toEqual(await get(b1.id));

      // One group commit: b3 supersedes b2, then b4 supersedes b3 (which is stored superseded at once).
      messages.length = 0;
      const b3 = newBuild('acme/web');
      const b4 = newBuild('acme/web');
      const [r3, r4] = await Promise.all([publishing.submit([b3]), publishing.submit([b4])]);
      expect([r3.superseded, r4.superseded]).toEqual([[b2.id], [b3.id]]);
      await waitFor(async () => (messages.length >= 1 ? true : undefined), 10_000, 'one message');
      expect(messages).toHaveLength(1);
      expect(flat()).toEqual([
        [b3.id, 'queued', null],
        [b2.id, 'superseded', b3.id],
        [b4.id, 'queued', null],
        [b3.id, 'superseded', b4.id],
      ]);
      expect(messages[0]![0]).toEqual(b3);
      expect(messages[0]![1]).toEqual(await get(b2.id));
      expect(messages[0]![3]).toEqual(await get(b3.id));
      // Announced once, on the channel: not again through onChange.
      expect(changes).toEqual([]);

      // The message is built only while someone listens: a pattern subscriber counts too.
      await sub.unsubscribe(channel);
      const patterned: BuildRecord[][] = [];
      sub.on('pmessage', (_p: string, _c: string, m: string) => patterned.push((JSON.parse(m) as PackedBuildEvent[]).map(unpackBuildEvent)));
      await sub.psubscribe('test:ev*');
      const b5 = newBuild('acme/web');
      await publishing.submit([b5]);
      await waitFor(async () => (patterned.length >= 1 ? true : undefined), 10_000, 'a message to the pattern');
      expect(patterned[0]!.map((r) => [r.id, r.status])).toEqual([
        [b5.id, 'queued'],
        [b4.id, 'superseded'],
      ]);
      await publishing.close();
    } finally {
      sub.disconnect();
    }
  });

  it("supersedes a ref's still-queued build when a newer push builds the same rules", async () => {
    const b1 = newBuild('acme/web');
    const b2 = newBuild('acme/web');
    const other = newBuild('acme/web', { rules: ['docs'] });
    const dev = newBuild('acme/web', { ref: 'refs/heads/dev' });
    await lanes.submit([b1]);
    await lanes.submit([dev]);
    const r = await lanes.submit([b2]);
    expect(r.superseded).toEqual([b1.id]);
    const s1 = await get(b1.id);
    expect(s1).toMatchObject({ status: 'superseded', supersededBy: b2.id });
    expect(s1.finishedAt).not.toBeNull();
    expect(changes.at(-2)).toMatchObject({ id: b2.id, status: 'queued' });
    expect(changes.at(-1)).toMatchObject({ id: b1.id, status: 'superseded' });
    // A push whose rules do not cover the queued build (a paths filter left one out) keeps it.
    expect((await lanes.submit([other])).superseded).toEqual([]);
    // Two builds of one push never supersede each other; the next push with both rules replaces both.
    const p1 = newBuild('acme/web', { ref: 'refs/tags/v1', rules: ['semver'] });
    const p2 = newBuild('acme/web', { ref: 'refs/tags/v1', rules: ['latest', 'edge'] });
    expect((await lanes.submit([p1, p2])).superseded).toEqual([]);
    const q = newBuild('acme/web', { ref: 'refs/tags/v1', rules: ['semver', 'latest', 'edge'] });
    expect((await lanes.submit([q])).superseded.sort()).toEqual([p1.id, p2.id].sort());
    await startWorker({ slots: 2 });
    for (const b of [b2, other, dev, q]) await until(b.id, 'succeeded');
    const ran = new Set(starts(await runEvents(redis)));
    expect(ran.has(b1.id) || ran.has(p1.id) || ran.has(p2.id)).toBe(false);
    expect(await get(b1.id)).toMatchObject({ status: 'superseded' });
  });

  it('lets a running build finish when superseded, unless cancel_superseded is set', async () => {
    await startWorker({ slots: 2 });
    const r1 = newBuild('acme/web', { build_args: { SLEEP_MS: '400' } });
    await lanes.submit([r1]);
    await until(r1.id, 'running');
    const r2 = newBuild('acme/web');
    expect(await lanes.submit([r2])).toEqual({ outcome: 'queued', superseded: [], aborted: [] });
    await until(r2.id, 'succeeded');
    expect((await get(r1.id)).status).toBe('succeeded');

    const c1 = newBuild('acme/web', { build_args: { SLEEP_MS: '30000' } });
    await lanes.submit([c1], { cancelSuperseded: true });
    await until(c1.id, 'running');
    const c2 = newBuild('acme/web');
    expect(await lanes.submit([c2])).toEqual({ outcome: 'queued', superseded: [], aborted: [c1.id] });
    await until(c2.id, 'succeeded');
    const ended = await get(c1.id);
    expect(ended).toMatchObject({ status: 'superseded', supersededBy: c2.id, digest: null });
    const events = (await runEvents(redis)).filter((e) => e.id === c1.id).map((e) => e.event);
    expect(events).toEqual(['start', 'aborted']);
  });

  it('cancels a queued build at once and a running one through its AbortSignal; an ended build is a conflict', async () => {
    const q = newBuild('acme/web', { ref: 'refs/heads/q' });
    const run = newBuild('acme/api', { build_args: { SLEEP_MS: '30000' } });
    await lanes.submit([run]);
    await lanes.submit([newBuild('acme/web', { ref: 'refs/heads/first', build_args: { SLEEP_MS: '300' } })]);
    await lanes.submit([q]);
    await startWorker({ slots: 2 });
    await until(run.id, 'running');
    const cq = await lanes.cancel(q.id, 'alice');
    expect(cq).toMatchObject({ status: 'cancelled', error: 'cancelled by alice' });
    expect(cq.finishedAt).not.toBeNull();
    const cr = await lanes.cancel(run.id, 'bob');
    expect(cr.status).toBe('running');
    await until(run.id, 'cancelled');
    expect(await get(run.id)).toMatchObject({ error: 'cancelled by bob', digest: null });
    await expect(lanes.cancel(run.id, 'bob')).rejects.toBeInstanceOf(ConflictError);
    await expect(lanes.cancel(run.id, 'bob')).rejects.toMatchObject({ status: 409 });
    await expect(lanes.cancel('nope', 'bob')).rejects.toBeInstanceOf(BuildNotFound);
    // The cancelled queued build never ran, and the slot went on to others.
    const more = newBuild('acme/api');
    await lanes.submit([more]);
    await until(more.id, 'succeeded');
    const ran = starts(await runEvents(redis));
    expect(ran).not.toContain(q.id);
    expect((await runEvents(redis)).filter((e) => e.id === run.id).map((e) => e.event)).toEqual(['start', 'aborted']);
  });

  it('ends a failing build failed with the one-line reason; retryable failures are tried again first', async () => {
    await startWorker({ slots: 2, maxAttempts: 3, retryDelayMs: 10 });
    const hard = newBuild('acme/web', { build_args: { FAIL: 'nonretryable' } });
    const soft = newBuild('acme/api', { build_args: { FAIL: 'retryable' } });
    const plain = newBuild('acme/cli', { build_args: { FAIL: 'plain' } });
    await lanes.submit([hard]);
    await lanes.submit([soft]);
    await lanes.submit([plain]);
    await until(hard.id, 'failed');
    await until(soft.id, 'failed');
    await until(plain.id, 'failed');
    expect((await get(hard.id)).error).toBe('step 3/5 RUN make: exit code 2');
    expect((await get(soft.id)).error).toBe('registry unreachable');
    expect((await get(plain.id)).error).toBe('plain failure');
    const ran = starts(await runEvents(redis));
    expect(ran.filter((id) => id === hard.id)).toHaveLength(1);
    expect(ran.filter((id) => id === soft.id)).toHaveLength(3);
    // Between attempts the record went back to queued: same record, no second terminal state.
    const softStates = await waitFor(() => {
      const seen = changes.filter((r) => r.id === soft.id).map((r) => r.status);
      return seen.includes('failed') ? seen : undefined;
    }, 5_000, 'the failed state to be published');
    expect(softStates).toEqual(['queued', 'running', 'queued', 'running', 'queued', 'running', 'failed']);
  });

  it("ends a build that outlives the lanes' time limit failed, timed out", async () => {
    await startWorker({ buildTimeoutMs: 300 });
    const b = newBuild('acme/web', { build_args: { SLEEP_MS: '30000' } });
    await lanes.submit([b]);
    await until(b.id, 'failed');
    expect(await get(b.id)).toMatchObject({ error: 'timed out after 300 ms', digest: null });
    expect((await runEvents(redis)).map((e) => e.event)).toEqual(['start', 'aborted']);
  });

  it('on close lets a running build finish within the grace period', async () => {
    const w = await startWorker();
    const b = newBuild('acme/web', { build_args: { SLEEP_MS: '300' } });
    await lanes.submit([b]);
    await until(b.id, 'running');
    await w.close(10_000);
    expect((await get(b.id)).status).toBe('succeeded');
  });

  it('on close hands a build that outlives the grace period back to its lane; another worker runs the same record', async () => {
    const w = await startWorker({ id: 'first' });
    const b = newBuild('acme/web', { build_args: { SLEEP_MS: '1500' } });
    const next = newBuild('acme/web', { ref: 'refs/heads/next' });
    await lanes.submit([b]);
    await lanes.submit([next]);
    await until(b.id, 'running');
    await w.close(100);
    const back = await get(b.id);
    expect(back).toMatchObject({ id: b.id, status: 'queued', startedAt: null });
    // It went back to the front of its lane, ahead of the build queued after it.
    await startWorker({ id: 'second' });
    await until(next.id, 'succeeded');
    expect((await get(b.id)).status).toBe('succeeded');
    const events = await runEvents(redis);
    expect(events.filter((e) => e.id === b.id).map((e) => `${e.tag}:${e.event}`)).toEqual(['first:start', 'first:aborted', 'second:start', 'second:end']);
    expect(starts(events)).toEqual([b.id, b.id, next.id]);
  });

  it('loses nothing when a dispatcher dies between picking a build and adding its job', async () => {
    const b = newBuild('acme/web');
    await lanes.submit([b]);
    // A process picks the build (as a dispatch pass does) and dies before BullMQ hears of it.
    const scripts = new LaneScripts(redis);
    await scripts.heartbeat('ghost', 1, Date.now() + 60_000);
    expect((await scripts.dispatch(Date.now())).map((p) => p.id)).toEqual([b.id]);
    await scripts.leave('ghost');
    await startWorker({ dispatchGraceMs: 200, reconcileMs: 100 });
    await until(b.id, 'succeeded');
    expect(starts(await runEvents(redis))).toEqual([b.id]);
  });

  it('runs on a connection that does not retry forever (it opens its own for BullMQ)', async () => {
    const plain = new Redis(srv.url, { enableOfflineQueue: false });
    await new Promise((r) => plain.once('ready', r));
    try {
      await startWorker({ redis: plain });
      const b = newBuild('acme/web');
      await lanes.submit([b]);
      await until(b.id, 'succeeded');
    } finally {
      await Promise.all(workers.splice(0).map((w) => w.close(0)));
      plain.disconnect();
    }
  });

  it('does not open Redis connections per repository', async () => {
    await startWorker({ slots: 4 });
    const count = async () => (await redis.client('LIST') as string).trim().split('\n').length;
    const before = await count();
    const builds = Array.from({ length: 60 }, (_, i) => newBuild(`acme/r${i}`, { build_args: { SLEEP_MS: '1' } }));
    for (const b of builds) await lanes.submit([b]);
    for (const b of builds) await until(b.id, 'succeeded');
    expect(await count()).toBe(before);
  });
});
