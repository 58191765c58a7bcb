import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBuild, BuildStore, unpackBuildEvent, type BuildRecord, type PackedBuildEvent } from '../src/store/index.js';
import { laneKeys } from '../src/queue/index.js';
import { LaneScripts, type Submission, type SubmissionAnswer } from '../src/queue/scripts.js';
import { newBuild } from './support/lanes.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

/**
 * The lane scripts against random interleavings of submit / dispatch / claim / finish / hand back /
 * cancel, with the scheduler's invariants checked after every step: nothing queued is ever out of
 * both its lane and its slot, slots and per-repository counts agree, no repository runs more than
 * its concurrency, the pool is never over-committed, and a repository with work and room is
 * always in the ring (no lane gets stuck).
 */
let srv: TestRedis;
let redis: Redis;
beforeAll(async () => {
  srv = await startRedis({ appendonly: false });
  redis = new Redis(srv.url);
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});

const REPOS = ['o/a', 'o/b', 'o/c'];
const CAPACITY = 3;

type Cmd =
  /** one batch of submissions (the lanes' group commit), each of one build */
  | { op: 'submit'; subs: { repo: number; ref: number; rules: number; conc: number | null }[] }
  | { op: 'dispatch' }
  | { op: 'claim'; pick: number }
  | { op: 'finish'; pick: number; status: 'succeeded' | 'failed' }
  | { op: 'handback'; pick: number }
  | { op: 'cancel'; pick: number }
  | { op: 'stale'; pick: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant('submit' as const),
    subs: fc.array(fc.record({ repo: fc.nat(2), ref: fc.nat(2), rules: fc.nat(2), conc: fc.option(fc.integer({ min: 1, max: 3 })) }), { minLength: 1, maxLength: 3 }),
  }),
  fc.constant({ op: 'dispatch' as const }),
  fc.record({ op: fc.constant('claim' as const), pick: fc.nat(100) }),
  fc.record({ op: fc.constant('finish' as const), pick: fc.nat(100), status: fc.constantFrom('succeeded' as const, 'failed' as const) }),
  fc.record({ op: fc.constant('handback' as const), pick: fc.nat(100) }),
  fc.record({ op: fc.constant('cancel' as const), pick: fc.nat(100) }),
  fc.record({ op: fc.constant('stale' as const), pick: fc.nat(100) }),
);

const RULESETS = [['edge'], ['docs'], ['edge', 'docs']];

/** `maxConc`: the highest concurrency each repository had; lowering it lets running builds finish. */
async function checkInvariants(store: BuildStore, ids: string[], owners: Map<string, string>, maxConc: Map<string, number>): Promise<void> {
  const records = new Map((await store.getMany(ids)).map((r) => [r.id, r] as const));
  const active = Object.fromEntries(Object.entries(await redis.hgetall(laneKeys.active)).map(([k, v]) => [k, JSON.parse(v) as { job: string; repo: string }]));
  const running = await redis.hgetall(laneKeys.running);
  const conc = await redis.hgetall(laneKeys.concurrency);
  const ring = new Set(await redis.zrange(laneKeys.ring, '0', '-1'));
  expect(Object.keys(active).length).toBeLessThanOrEqual(CAPACITY);
  for (const repo of REPOS) {
    const lane = await redis.lrange(laneKeys.lane(repo), 0, -1);
    const held = Object.values(active).filter((a) => a.repo === repo).length;
    expect(Number(running[repo] ?? 0)).toBe(held);
    expect(held).toBeLessThanOrEqual(maxConc.get(repo) ?? 1);
    for (const id of lane) expect(records.get(id)?.status).toBe('queued');
    expect(new Set(lane).size).toBe(lane.length);
    // Liveness: work and room means a turn is coming.
    if (lane.length > 0 && held < Number(conc[repo] ?? 1)) expect(ring.has(repo)).toBe(true);
    for (const id of lane) expect(active[id]).toBeUndefined();
  }
  for (const r of records.values()) {
    const inLane = (await redis.lpos(laneKeys.lane(r.repo), r.id)) !== null;
    if (r.status === 'queued') expect(inLane || active[r.id] !== undefined).toBe(true);
    if (r.status === 'running') {
      expect(active[r.id]).toBeDefined();
      expect(owners.has(r.id)).toBe(true);
    }
    if (!['queued', 'running'].includes(r.status)) {
      expect(active[r.id]).toBeUndefined();
      expect(inLane).toBe(false);
      expect(r.finishedAt).not.toBeNull();
    }
    if (r.status === 'superseded') expect(ids).toContain(r.supersededBy);
  }
}

describe('lane scripts (model)', () => {
  it('keep their invariants under any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 5, maxLength: 40 }), async (cmds) => {
        await redis.flushall();
        const scripts = new LaneScripts(redis);
        const store = new BuildStore(redis);
        await scripts.heartbeat('w', CAPACITY, Date.now() + 600_000);
        const ids: string[] = [];
        const jobs = new Map<string, string>(); // build → job it was dispatched under
        const earlier: { id: string; job: string }[] = []; // jobs a build was dispatched under before
        const owners = new Map<string, string>();
        const maxConc = new Map<string, number>();
        const setJob = jobs.set.bind(jobs);
        jobs.set = (id: string, job: string) => {
          const old = jobs.get(id);
          if (old && old !== job) earlier.push({ id, job: old });
          return setJob(id, job);
        };
        const now = Date.now();
        const iso = new Date(now).toISOString();
        for (const c of cmds) {
          if (c.op === 'submit') {
            const subs = c.subs.map((s) => {
              const b: BuildRecord = newBuild(REPOS[s.repo]!, { ref: `refs/heads/r${s.ref}`, rules: RULESETS[s.rules]! });
              ids.push(b.id);
              if (s.conc) maxConc.set(b.repo, Math.max(s.conc, maxConc.get(b.repo) ?? 1));
              return { builds: [{ id: b.id, repo: b.repo, ref: b.ref, rules: b.rules, fields: encodeBuild(b) }], ...(s.conc ? { concurrency: s.conc } : {}) };
            });
            const r = await scripts.submit({ now, finishedAt: iso, subs });
            expect(r.answers.map((a) => a.outcome)).toEqual(subs.map(() => 'queued'));
            for (const p of r.picked) jobs.set(p.id, p.job);
          } else if (c.op === 'dispatch') {
            for (const p of await scripts.dispatch(now)) jobs.set(p.id, p.job);
          } else if (c.op === 'stale') {
            // A job from an earlier dispatch of a build (handed back since) changes nothing.
            if (earlier.length === 0) continue;
            const { id, job } = earlier[c.pick % earlier.length]!;
            const before = await store.get(id);
            expect((await scripts.claim(now, id, job, 'zombie', iso)).kind).toBe('stale');
            expect((await scripts.finish(now, id, job, 'failed', { finishedAt: iso, error: 'zombie' })).record).toBeNull();
            expect(await store.get(id)).toEqual(before);
          } else {
            const held = Object.keys(await redis.hgetall(laneKeys.active));
            if (held.length === 0) continue;
            const id = held[c.pick % held.length]!;
            const job = jobs.get(id)!;
            if (c.op === 'claim') {
              const owner = `w:${ids.length}:${c.pick}`;
              const r = await scripts.claim(now, id, job, owner, iso);
              if (r.kind !== 'stale') owners.set(id, owner);
            } else if (c.op === 'finish') {
              const r = await scripts.finish(now, id, job, c.status, { finishedAt: iso });
              if (r.record) owners.delete(id);
              for (const p of r.picked) jobs.set(p.id, p.job);
            } else if (c.op === 'handback') {
              const owner = owners.get(id);
              if (!owner) continue;
              const r = await scripts.handback(now, id, owner);
              if (r.kind === 'handed-back') {
                owners.delete(id);
                for (const p of r.picked) jobs.set(p.id, p.job);
              }
            } else {
              const r = await scripts.cancel(now, id, 'alice', iso, 'cancelled by alice');
              for (const p of r.picked) jobs.set(p.id, p.job);
              // A running build only gets an abort request; the worker ends it.
              if (r.outcome === 'requested') {
                const f = await scripts.finish(now, id, job, 'cancelled', { finishedAt: iso });
                if (f.record) owners.delete(id);
                for (const p of f.picked) jobs.set(p.id, p.job);
              }
            }
          }
          await checkInvariants(store, ids, owners, maxConc);
        }
        // Drain: with the pool free, every queued build is eventually dispatched, claimed and ended.
        for (let round = 0; round < 200; round++) {
          for (const p of await scripts.dispatch(now)) jobs.set(p.id, p.job);
          const held = Object.keys(await redis.hgetall(laneKeys.active));
          if (held.length === 0) break;
          for (const id of held) {
            await scripts.claim(now, id, jobs.get(id)!, 'drain', iso);
            const f = await scripts.finish(now, id, jobs.get(id)!, 'succeeded', { finishedAt: iso });
            for (const p of f.picked) jobs.set(p.id, p.job);
          }
        }
        owners.clear();
        await checkInvariants(store, ids, owners, maxConc);
        for (const r of await store.getMany(ids)) expect(['succeeded', 'failed', 'cancelled', 'superseded']).toContain(r.status);
      }),
      { numRuns: 300 },
    );
  });
});

type Sub = { repo: number; ref: number; rules: number; rules2: number | null; conc: number | null; cancel: boolean | null; receipt: number | null; guard: 'ok' | 'stale' | null; reuse: number | null };
const sub: fc.Arbitrary<Sub> = fc.record({
  repo: fc.nat(1),
  ref: fc.nat(1),
  rules: fc.nat(2),
  rules2: fc.option(fc.nat(2), { freq: 3 }),
  conc: fc.option(fc.integer({ min: 1, max: 3 })),
  cancel: fc.option(fc.boolean()),
  receipt: fc.option(fc.nat(5)),
  guard: fc.constantFrom('ok' as const, 'stale' as const, null),
  reuse: fc.option(fc.nat(50), { freq: 8 }),
});

/** Everything in a Redis db, comparable (a receipt's time to live aside). */
async function snapshot(r: Redis): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of (await r.keys('*')).sort()) {
    const type = await r.type(key);
    if (type === 'string') out[key] = await r.get(key);
    else if (type === 'hash') out[key] = Object.fromEntries(Object.entries(await r.hgetall(key)).sort());
    else if (type === 'list') out[key] = await r.lrange(key, 0, -1);
    else if (type === 'set') out[key] = (await r.smembers(key)).sort();
    else if (type === 'zset') out[key] = await r.zrange(key, '0', '-1', 'WITHSCORES');
    else out[key] = type;
  }
  return out;
}

describe('group commit', () => {
  it('leaves exactly what the same submissions one by one leave, answers and events included', async () => {
    const one = new Redis(srv.url, { db: 1 });
    const two = new Redis(srv.url, { db: 2 });
    const listener = new Redis(srv.url);
    const heard: Record<string, string[]> = {};
    listener.on('message', (c: string, m: string) => (heard[c] ??= []).push(...(JSON.parse(m) as PackedBuildEvent[]).map((e) => JSON.stringify(unpackBuildEvent(e)))));
    await listener.subscribe('one', 'two');
    const stored = async (r: Redis, channel: string) => [await snapshot(r), heard[channel] ?? []];
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(sub, { maxLength: 6 }), fc.array(sub, { minLength: 1, maxLength: 8 }), async (before, batch) => {
          await one.flushdb();
          await two.flushdb();
          for (const k of Object.keys(heard)) delete heard[k];
          for (const r of [one, two]) await r.hset('test:versions', 'o/a', '1', 'o/b', '1');
          const made: BuildRecord[] = [];
          const submission = (s: Sub): Submission => {
            const builds = [newBuild(REPOS[s.repo]!, { ref: `refs/heads/r${s.ref}`, rules: RULESETS[s.rules]! })];
            if (s.rules2 !== null) builds.push(newBuild(REPOS[s.repo]!, { ref: `refs/heads/r${(s.ref + s.rules2) % 2}`, rules: RULESETS[s.rules2]! }));
            if (s.reuse !== null && made.length > 0) builds[0] = made[s.reuse % made.length]!;
            made.push(...builds);
            return {
              builds: builds.map((b) => ({ id: b.id, repo: b.repo, ref: b.ref, rules: b.rules, fields: encodeBuild(b) })),
              ...(s.conc !== null ? { concurrency: s.conc } : {}),
              ...(s.cancel !== null ? { cancelSuperseded: s.cancel } : {}),
              ...(s.guard ? { guard: { key: 'test:versions', field: builds[0]!.repo, value: s.guard === 'ok' ? '1' : '0' } } : {}),
              ...(s.receipt !== null
                ? { receipt: { key: `test:delivery:${s.receipt}`, ttlMs: 60_000, value: `{"delivery":${s.receipt}}`, journal: { key: 'test:journal', cap: 4 }, mark: { key: 'test:heads', field: builds[0]!.ref, value: builds[0]!.id }, newest: null } }
                : {}),
            };
          };
          const now = Date.now();
          const finishedAt = new Date(now).toISOString();
          const earlier = before.map(submission);
          for (const [r, channel] of [[one, 'one'], [two, 'two']] as const) {
            const scripts = new LaneScripts(r);
            for (const s of earlier) await scripts.submit({ now, finishedAt, events: channel, subs: [s] });
          }
          const subs = batch.map(submission);
          const together = await new LaneScripts(one).submit({ now, finishedAt, events: 'one', subs });
          const alone: SubmissionAnswer[] = [];
          for (const s of subs) alone.push(...(await new LaneScripts(two).submit({ now, finishedAt, events: 'two', subs: [s] })).answers);
          expect(together.answers).toEqual(alone);
          await listener.ping();
          await one.ping();
          expect(await stored(one, 'one')).toEqual(await stored(two, 'two'));
        }),
        { numRuns: 200 },
      );
    } finally {
      one.disconnect();
      two.disconnect();
      listener.disconnect();
    }
  });
});
