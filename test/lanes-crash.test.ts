import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Lanes } from '../src/queue/index.js';
import type { BuildStatus } from '../src/store/index.js';
import { newBuild, runEvents, waitFor } from './support/lanes.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

/** Lane workers in their own processes, killed the hard way (SIGKILL) or stopped with SIGTERM. */
const log = pino({ level: 'silent' });
let srv: TestRedis;
let redis: Redis;
let lanes: Lanes;
let procs: ChildProcess[];

interface WorkerProc {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function spawnWorker(tag: string, env: Record<string, string> = {}): Promise<WorkerProc> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/support/lane-worker-process.ts'], {
    cwd: process.cwd(),
    env: { ...process.env, REDIS_URL: srv.url, TAG: tag, LOCK_MS: '2000', STALLED_MS: '1000', RECONCILE_MS: '1000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let err = '';
  proc.stderr!.on('data', (d) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d) => d.toString().includes('ready') && resolve());
    void exited.then(({ code }) => reject(new Error(`worker ${tag} exited (${code}) before ready: ${err}`)));
  });
  return { proc, exited };
}

async function kill9(w: WorkerProc): Promise<void> {
  w.proc.kill('SIGKILL');
  await w.exited;
}

const until = (id: string, status: BuildStatus, ms = 60_000) =>
  waitFor(async () => ((await lanes.store.get(id))?.status === status ? true : undefined), ms, `${id} to be ${status}`);
const startedBy = (id: string, n: number) =>
  waitFor(async () => {
    const s = (await runEvents(redis)).filter((e) => e.id === id && e.event === 'start');
    return s.length >= n ? s[n - 1] : undefined;
  }, 60_000, `start #${n} of ${id}`);
const terminalChanges = async (id: string) =>
  (await redis.lrange('test:changes', 0, -1))
    .map((s) => JSON.parse(s) as { id: string; status: string; tag: string })
    .filter((c) => c.id === id && ['succeeded', 'failed', 'cancelled', 'superseded'].includes(c.status));

beforeAll(async () => {
  srv = await startRedis({ appendfsync: 'always' });
  redis = new Redis(srv.url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // reconnects on its own while Redis is restarted
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});
beforeEach(async () => {
  await redis.flushall();
  procs = [];
  lanes = new Lanes({ redis, log });
});
afterEach(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await lanes.close();
});

// Each test spawns worker processes (a few seconds each under load) and waits out BullMQ locks.
describe('lanes across worker processes', { timeout: 180_000 }, () => {
  it('a worker killed with SIGKILL mid-build: another takes the same build over and it ends exactly once', async () => {
    const a = await spawnWorker('a');
    const b = await spawnWorker('b');
    const build = newBuild('acme/web', { build_args: { SLEEP_MS: '3000' } });
    await lanes.submit([build]);
    const first = await startedBy(build.id, 1);
    const victim = first.tag === 'a' ? a : b;
    const killedAt = Date.now();
    await kill9(victim);
    const second = await startedBy(build.id, 2);
    await until(build.id, 'succeeded');
    expect(second.tag).not.toBe(first.tag);
    const record = (await lanes.store.get(build.id))!;
    expect(record).toMatchObject({ id: build.id, status: 'succeeded', error: null });
    expect(record.digest).toMatch(/^sha256:/);
    const events = (await runEvents(redis)).filter((e) => e.id === build.id).map((e) => `${e.tag}:${e.event}`);
    expect(events).toEqual([`${first.tag}:start`, `${second.tag}:start`, `${second.tag}:end`]);
    // Settle: a later build of the same lane runs to its end before the exactly-once check.
    const later = newBuild('acme/web', { ref: 'refs/heads/later', build_args: { SLEEP_MS: '10' } });
    await lanes.submit([later]);
    await until(later.id, 'succeeded');
    await waitFor(async () => (await terminalChanges(later.id)).length > 0, 10_000, 'the later build to be published');
    expect(await terminalChanges(build.id)).toEqual([{ id: build.id, status: 'succeeded', tag: second.tag }]);
    console.log(JSON.stringify({ takeover_ms: second.at - killedAt, lock_ms: 2000, stalled_ms: 1000 }));
  });

  it('a build whose workers keep dying ends failed with "worker lost" after the allowed takeovers', async () => {
    const env = { MAX_LOST: '1' };
    const build = newBuild('acme/web', { build_args: { SLEEP_MS: '60000' } });
    await lanes.submit([build]);
    await kill9(await spawnWorker('a', env).then(async (w) => (await startedBy(build.id, 1), w)));
    await kill9(await spawnWorker('b', env).then(async (w) => (await startedBy(build.id, 2), w)));
    await spawnWorker('c', env);
    await until(build.id, 'failed');
    expect(await lanes.store.get(build.id)).toMatchObject({ status: 'failed', error: 'worker lost' });
    const events = (await runEvents(redis)).filter((e) => e.id === build.id).map((e) => `${e.tag}:${e.event}`);
    expect(events).toEqual(['a:start', 'b:start']);
    // The lane is free again: the next build of the repository runs.
    const next = newBuild('acme/web', { ref: 'refs/heads/next', build_args: { SLEEP_MS: '10' } });
    await lanes.submit([next]);
    await until(next.id, 'succeeded');
    await waitFor(async () => (await terminalChanges(next.id)).length > 0, 10_000, 'the next build to be published');
    expect(await terminalChanges(build.id)).toEqual([{ id: build.id, status: 'failed', tag: 'c' }]);
  });

  it('a build cancelled while its worker is dead ends cancelled when taken over, without running again', async () => {
    const a = await spawnWorker('a');
    const build = newBuild('acme/web', { build_args: { SLEEP_MS: '60000' } });
    await lanes.submit([build]);
    await startedBy(build.id, 1);
    await kill9(a);
    expect((await lanes.cancel(build.id, 'alice')).status).toBe('running');
    await spawnWorker('b');
    await until(build.id, 'cancelled');
    expect(await lanes.store.get(build.id)).toMatchObject({ status: 'cancelled', error: 'cancelled by alice' });
    const next = newBuild('acme/web', { ref: 'refs/heads/next', build_args: { SLEEP_MS: '10' } });
    await lanes.submit([next]);
    await until(next.id, 'succeeded');
    expect((await runEvents(redis)).filter((e) => e.id === build.id).map((e) => `${e.tag}:${e.event}`)).toEqual(['a:start']);
  });

  it('Redis killed with SIGKILL mid-build and restarted: queued and running builds all end, each exactly once', async () => {
    await spawnWorker('a');
    const builds = ['x', 'y', 'z'].map((r) => newBuild('acme/web', { ref: `refs/heads/${r}`, build_args: { SLEEP_MS: '800' } }));
    for (const b of builds) await lanes.submit([b]);
    await startedBy(builds[0]!.id, 1);
    await srv.kill9();
    await new Promise((r) => setTimeout(r, 1_000));
    await srv.restart();
    for (const b of builds) await until(b.id, 'succeeded', 90_000);
    await waitFor(async () => (await terminalChanges(builds[2]!.id)).length > 0, 10_000, 'the last build to be published');
    for (const b of builds) expect((await terminalChanges(b.id)).map((c) => c.status)).toEqual(['succeeded']);
    const ends = (await runEvents(redis)).filter((e) => e.event === 'end').map((e) => e.id);
    for (const b of builds) expect(ends).toContain(b.id);
  });

  it('SIGTERM: the worker hands its running build back (same record, queued) and exits 0; the next worker runs it', async () => {
    const a = await spawnWorker('a', { GRACE_MS: '200' });
    const build = newBuild('acme/web', { build_args: { SLEEP_MS: '2000' } });
    await lanes.submit([build]);
    await startedBy(build.id, 1);
    const termAt = Date.now();
    a.proc.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    console.log(JSON.stringify({ sigterm_to_exit_ms: Date.now() - termAt, grace_ms: 200 }));
    expect(await lanes.store.get(build.id)).toMatchObject({ id: build.id, status: 'queued', startedAt: null });
    await spawnWorker('b');
    await until(build.id, 'succeeded');
    const events = (await runEvents(redis)).filter((e) => e.id === build.id).map((e) => `${e.tag}:${e.event}`);
    expect(events).toEqual(['a:start', 'a:aborted', 'b:start', 'b:end']);
  });
});
