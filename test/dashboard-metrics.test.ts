import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPipelineMetrics } from '../src/metrics/index.js';
import { Lanes } from '../src/queue/index.js';
import { LaneScripts } from '../src/queue/scripts.js';
import { BuildStore, EventBus, type BuildRecord, type DeploymentRecord } from '../src/store/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

/**
 * Pipeline metrics on a real Redis: lane depth, wait and build outcomes from builds really queued
 * and ended through the lanes, timings and rollout outcomes from events really published on the
 * event bus.
 */

const T0 = Date.parse('2026-01-01T10:00:00Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

function build(id: string, repo: string, ref: string): BuildRecord {
  return {
    id, repo, ref, sha: 'a'.repeat(40), rules: ['edge'], tags: ['edge'], image: `127.0.0.1:5000/${repo}`,
    status: 'queued', digest: null, error: null, queuedAt: iso(0), startedAt: null, finishedAt: null, deployments: [],
    context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: [], cloneUrl: null, deliveryId: null,
    trigger: 'manual', by: 'test', supersededBy: null, warnings: [],
  };
}

function deployment(id: string, status: DeploymentRecord['status'], tookMs: number): DeploymentRecord {
  return {
    id, repo: 'acme/a', environment: 'staging', revision: 1, digest: `sha256:${'b'.repeat(64)}`, image: '127.0.0.1:5000/acme/a',
    build: null, trigger: 'build', by: 'slipway', status, startedAt: iso(0), finishedAt: status === 'running' ? null : iso(tookMs), error: null,
  };
}

/** The value of one sample line of the Prometheus text, or undefined when it is absent. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : undefined;
}

let redis: TestRedis;
let conn: Redis;
let events: EventBus;
let registry: Registry;
let now = T0;

beforeAll(async () => {
  redis = await startRedis();
  conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  events = new EventBus(conn);
  registry = new Registry();
  await registerPipelineMetrics(registry, { events, builds: new BuildStore(conn), clock: () => new Date(now) });
});

afterAll(async () => {
  await events.close();
  conn.disconnect();
  await redis.stop();
});

describe('pipeline metrics', () => {
  it('reports queued builds per repository and how long the oldest has waited', async () => {
    const lanes = new Lanes({ redis: conn, log: pino({ level: 'silent' }), clock: () => now });
    await lanes.submit([build('a1', 'acme/a', 'refs/heads/main'), build('a2', 'acme/a', 'refs/heads/dev')]);
    await lanes.submit([build('b1', 'acme/b', 'refs/heads/main')]);
    now = T0 + 30_000;
    const text = await registry.metrics();
    expect(sample(text, 'slipway_lane_depth{repo="acme/a"}')).toBe(2);
    expect(sample(text, 'slipway_lane_depth{repo="acme/b"}')).toBe(1);
    expect(sample(text, 'slipway_lane_oldest_wait_seconds{repo="acme/a"}')).toBe(30);

    // A lane that empties drops out of the next scrape.
    await lanes.cancel('b1', 'test');
    const after = await registry.metrics();
    expect(sample(after, 'slipway_lane_depth{repo="acme/b"}')).toBeUndefined();
    expect(sample(after, 'slipway_lane_depth{repo="acme/a"}')).toBe(2);
  });

  it('counts the builds that ended with each outcome, whether they ran or not, from the records', async () => {
    await conn.flushdb();
    const before = await registry.metrics();
    const count = (text: string, outcome: string) => sample(text, `slipway_builds_total{outcome="${outcome}"}`) ?? 0;
    const lanes = new Lanes({ redis: conn, log: pino({ level: 'silent' }), clock: () => now });
    await lanes.submit([build('o1', 'acme/o', 'refs/heads/main')]);
    await lanes.submit([build('o2', 'acme/o', 'refs/heads/main')]); // supersedes o1 while queued
    await lanes.submit([build('o3', 'acme/o', 'refs/heads/dev')]);
    await lanes.cancel('o3', 'test'); // cancelled while queued
    // o2 runs and succeeds
    const scripts = new LaneScripts(conn);
    await scripts.heartbeat('metrics-test', 1, now + 60_000);
    const [picked] = await scripts.dispatch(now);
    expect(picked!.id).toBe('o2');
    await scripts.claim(now, 'o2', picked!.job, 'metrics-test', iso(1_000));
    expect((await scripts.finish(now, 'o2', picked!.job, 'succeeded', { finishedAt: iso(2_000) })).record?.status).toBe('succeeded');
    await scripts.leave('metrics-test');
    await lanes.close();

    const after = await registry.metrics();
    expect(count(after, 'succeeded') - count(before, 'succeeded')).toBe(1);
    expect(count(after, 'superseded') - count(before, 'superseded')).toBe(1);
    expect(count(after, 'cancelled') - count(before, 'cancelled')).toBe(1);
    expect(count(after, 'failed') - count(before, 'failed')).toBe(0);
  });

  it('times each build and counts each rollout outcome once, from the events', async () => {
    const running = { ...build('x1', 'acme/x', 'refs/heads/main'), status: 'running' as const, startedAt: iso(5_000) };
    const done = { ...running, status: 'succeeded' as const, finishedAt: iso(17_000), digest: `sha256:${'c'.repeat(64)}` };
    const dropped = { ...build('x2', 'acme/x', 'refs/heads/dev'), status: 'cancelled' as const, finishedAt: iso(1_000) };
    for (const record of [running, done, done, dropped]) await events.publish({ type: 'build', record });
    await events.publish({ type: 'deployment', record: deployment('d1', 'running', 0) });
    await events.publish({ type: 'deployment', record: deployment('d1', 'rolled_back', 9_000) });
    await events.publish({ type: 'deployment', record: deployment('d1', 'rolled_back', 9_000) });

    await expect.poll(async () => sample(await registry.metrics(), 'slipway_rollouts_total{environment="staging",outcome="rolled_back"}')).toBe(1);
    const text = await registry.metrics();
    expect(sample(text, 'slipway_build_wait_seconds_count{repo="acme/x"}')).toBe(1);
    expect(sample(text, 'slipway_build_wait_seconds_sum{repo="acme/x"}')).toBe(5);
    expect(sample(text, 'slipway_build_duration_seconds_count{outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'slipway_build_duration_seconds_sum{outcome="succeeded"}')).toBe(12);
    // Cancelled while queued: it never ran, so it has no duration.
    expect(sample(text, 'slipway_build_duration_seconds_count{outcome="cancelled"}')).toBeUndefined();
    expect(sample(text, 'slipway_rollout_duration_seconds_sum{environment="staging",outcome="rolled_back"}')).toBe(9);
  });
});

describe('the event bus', () => {
  it('sends the records of builds that have not started only to listeners that want them, and every listener its events in publish order', async () => {
    const bus = new EventBus(conn);
    const all: string[] = [];
    const startsAndEnds: string[] = [];
    await bus.subscribe((e) => all.push(`${e.record.id}:${e.record.status}`));
    await bus.subscribe((e) => startsAndEnds.push(`${e.record.id}:${e.record.status}`), { queued: false });
    const b = build('bus1', 'acme/bus', 'refs/heads/main');
    await bus.publish({ type: 'build', record: b });
    await bus.publish({ type: 'build', record: { ...b, status: 'running', startedAt: iso(1) } });
    await bus.publish({ type: 'build', record: { ...b, status: 'queued', startedAt: null } });
    await bus.publish({ type: 'build', record: { ...b, status: 'succeeded', startedAt: iso(1), finishedAt: iso(2) } });
    // cancelled before it started: nothing to time
    await bus.publish({ type: 'build', record: { ...b, id: 'bus2', status: 'cancelled', finishedAt: iso(3) } });
    const deadline = Date.now() + 5000;
    while ((all.length < 5 || startsAndEnds.length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(all).toEqual(['bus1:queued', 'bus1:running', 'bus1:queued', 'bus1:succeeded', 'bus2:cancelled']);
    expect(startsAndEnds).toEqual(['bus1:running', 'bus1:succeeded']);
    await bus.close();
  });
});
