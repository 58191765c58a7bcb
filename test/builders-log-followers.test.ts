import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LogFollowers, LogFollowersClosedError, openBuildLog, readLog, type FollowOptions, type LogEntry } from '../src/builders/index.js';
import { eventually } from '../dev/deploy.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

/** Many followers of build logs on a few shared Redis connections, against a real Redis and the real log writer. */

const NAME = 'slipway:log-reader';
let redisServer: TestRedis;
let redis: Redis;
let hub: LogFollowers | undefined;

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
});

afterEach(async () => {
  await hub?.close();
  hub = undefined;
  // Closing leaves no reader connection and no wake key behind.
  await eventually(async () => (await readerClients()).length === 0, 5_000, 50);
  expect(await redis.keys('slipway:log-followers:*')).toEqual([]);
});

afterAll(async () => {
  redis.disconnect();
  await redisServer.stop();
});

/** The log readers' connections as Redis sees them (CLIENT LIST), with their flags (`b`: blocked in a read). */
async function readerClients(): Promise<{ flags: string }[]> {
  const list = (await redis.client('LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${NAME} `))
    .map((line) => ({ flags: / flags=(\S+)/.exec(line)![1]! }));
}

async function xreadCalls(): Promise<number> {
  return Number(/cmdstat_xread:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
}

/** Collects what one follower is given until its follow ends. */
function collect(followers: LogFollowers, buildId: string, opts: FollowOptions = {}): { seen: LogEntry[]; done: Promise<void> } {
  const seen: LogEntry[] = [];
  const done = (async () => {
    for await (const e of followers.follow(buildId, opts)) seen.push(e);
  })();
  return { seen, done };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const after = (entries: LogEntry[], id: string | undefined) => (id ? entries.slice(entries.findIndex((e) => e.id === id) + 1) : entries);

describe('log followers share Redis connections', () => {
  it('50 followers of 3 logs, at different positions, each get exactly their entries in order on at most 2 connections', { timeout: 30_000 }, async () => {
    const followers = (hub = new LogFollowers({ redis, readers: 2 }));
    const ids = ['many-a', 'many-b', 'many-c'];
    // many-c writes past its line limit, so its followers also get the cut marker.
    const logs = ids.map((id, i) => openBuildLog(redis, id, i === 2 ? { maxLines: 50 } : {}));
    const write = async (what: string, n: number) => {
      for (const [i, log] of logs.entries()) {
        log.step(`${ids[i]} ${what}`);
        for (let k = 0; k < n; k++) log.line(`${ids[i]} ${what} ${k}`);
      }
      await Promise.all(logs.map((l) => l.flush()));
    };
    await write('before', 20);
    const written = await Promise.all(ids.map((id) => readLog(redis, id)));

    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, (await readerClients()).length);
        await pause(5);
      }
    })();

    const started: { build: number; from: string | undefined; got: ReturnType<typeof collect> }[] = [];
    for (let i = 0; i < 50; i++) {
      const build = i % 3;
      const early = written[build]!;
      // From the start, after the first, a middle and the last entry written before anyone followed, or '0'.
      const from = [undefined, early[0]!.id, early[10]!.id, early.at(-1)!.id, '0'][i % 5];
      started.push({ build, from, got: collect(followers, ids[build]!, from === undefined ? {} : { after: from }) });
      // Followers keep joining while the logs grow.
      if (i % 10 === 9) await write(`wave ${i}`, 5);
    }
    await write('last', 10);
    await pause(100);
    const open = await readerClients();
    expect(open.length).toBeGreaterThanOrEqual(1);
    expect(open.length).toBeLessThanOrEqual(2);
    // Nothing else was opened either: this test's own connection plus the readers.
    expect(Number(/connected_clients:(\d+)/.exec(await redis.info('clients'))![1])).toBeLessThanOrEqual(3);

    await Promise.all(logs.map((l, i) => l.end(i === 1 ? 'failed' : 'succeeded')));
    await Promise.all(started.map((s) => s.got.done));
    sampling = false;
    await sampler;

    const full = await Promise.all(ids.map((id) => readLog(redis, id)));
    expect(full[2]!.some((e) => e.kind === 'cut')).toBe(true);
    for (const { build, from, got } of started) {
      const expected = after(full[build]!, from === '0' ? undefined : from);
      expect(got.seen.map((e) => `${e.id} ${e.kind} ${e.text}`)).toEqual(expected.map((e) => `${e.id} ${e.kind} ${e.text}`));
      expect(got.seen.at(-1)!.kind).toBe('end');
    }
    expect(most).toBeGreaterThanOrEqual(1);
    expect(most).toBeLessThanOrEqual(2);
  });

  it('a follower after a middle id gets only the later entries, beside one from the start; a bad id reads from the start', async () => {
    const followers = (hub = new LogFollowers({ redis, readers: 2 }));
    const log = openBuildLog(redis, 'middle');
    for (let i = 0; i < 10; i++) log.line(`line ${i}`);
    await log.flush();
    const early = await readLog(redis, 'middle');
    const fromMiddle = collect(followers, 'middle', { after: early[4]!.id });
    const fromStart = collect(followers, 'middle');
    // Out of Redis's range: it must neither fail the read the followers share nor skip anything.
    const outOfRange = collect(followers, 'middle', { after: '99999999999999999999-0' });
    await pause(100);
    log.line('live');
    await log.end('succeeded');
    await Promise.all([fromMiddle.done, fromStart.done, outOfRange.done]);
    expect(fromMiddle.seen.map((e) => e.text)).toEqual(['line 5', 'line 6', 'line 7', 'line 8', 'line 9', 'live', 'succeeded']);
    const all = ['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6', 'line 7', 'line 8', 'line 9', 'live', 'succeeded'];
    expect(fromStart.seen.map((e) => e.text)).toEqual(all);
    expect(outOfRange.seen.map((e) => e.text)).toEqual(all);
  });

  it('a follower joining while the reader is blocked on another log is served at once, not at the read\'s timeout', async () => {
    const followers = (hub = new LogFollowers({ redis, readers: 1 }));
    const quiet = collect(followers, 'wake-quiet');
    await eventually(async () => (await readerClients()).some((c) => c.flags.includes('b')), 5_000, 20);
    const log = openBuildLog(redis, 'wake-busy');
    log.line('already there');
    await log.flush();
    const t0 = Date.now();
    const late = collect(followers, 'wake-busy');
    await eventually(async () => late.seen.length === 1, 5_000, 10);
    expect(Date.now() - t0).toBeLessThan(1_000);
    await log.end('succeeded');
    await late.done;
    expect(late.seen.map((e) => e.text)).toEqual(['already there', 'succeeded']);
    expect(quiet.seen).toEqual([]);
    // Closing ends the one still following: the process is stopping, its client resumes elsewhere.
    const ended = expect(quiet.done).rejects.toBeInstanceOf(LogFollowersClosedError);
    await followers.close();
    await ended;
  });

  it('a follower that aborts gets nothing more; when the last one leaves, no blocking read runs', async () => {
    const followers = (hub = new LogFollowers({ redis, readers: 2 }));
    const log = openBuildLog(redis, 'leaving');
    log.line('one');
    await log.flush();
    const ac = new AbortController();
    const leaving = collect(followers, 'leaving', { signal: ac.signal });
    const bc = new AbortController();
    const staying = collect(followers, 'leaving', { signal: bc.signal });
    await eventually(async () => leaving.seen.length === 1 && staying.seen.length === 1, 5_000, 10);
    ac.abort();
    await leaving.done;
    log.line('two');
    await log.flush();
    await eventually(async () => staying.seen.length === 2, 5_000, 10);
    expect(leaving.seen.map((e) => e.text)).toEqual(['one']);
    expect(staying.seen.map((e) => e.text)).toEqual(['one', 'two']);
    expect((await readerClients()).some((c) => c.flags.includes('b'))).toBe(true);

    bc.abort();
    await staying.done;
    // Well before the read's own 5 s timeout: nobody follows, so nobody reads.
    await eventually(async () => (await readerClients()).every((c) => !c.flags.includes('b')), 1_000, 20);
    const calls = await xreadCalls();
    await pause(700);
    expect(await xreadCalls()).toBe(calls);
    expect((await readerClients()).every((c) => !c.flags.includes('b'))).toBe(true);
  });
});
