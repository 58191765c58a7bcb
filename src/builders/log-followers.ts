import { keyPrefixes } from '../store/index.js';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { logKey, readLog, toEntry, type LogEntry } from './log.js';

/**
 * Followers of build logs share a bounded number of Redis connections: each of at most `readers`
 * blocking readers does one XREAD BLOCK over the logs of every build it was given, from the
 * smallest position of that build's followers, and hands each follower the entries after its own
 * position. A build's followers all go to one reader; a new build to the reader with the fewest.
 */

export interface LogFollowersOptions {
  /** For commands that do not block (wakes, the last read of a log nobody closed); readers are duplicates of it. */
  redis: Redis;
  /** Blocking readers (Redis connections) at most: SLIPWAY_LOG_READERS. */
  readers: number;
  /** The readers' client name (CLIENT LIST); default `slipway:log-reader`. */
  connectionName?: string;
  /** How long a follower waits for news before asking `isOver` (default 1 s). */
  idleMs?: number;
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** Asked after `idleMs` without news: true ends a log nobody closed (the build ended without its `end` entry). */
  isOver?: () => Promise<boolean>;
  /** Only entries after this stream id (a client's Last-Event-ID); absent or not a stream id: from the start. */
  after?: string;
}

/** The followers stopped because the process is stopping; the client may resume after its last id. */
export class LogFollowersClosedError extends Error {
  override readonly name = 'LogFollowersClosedError';
  readonly code = 'log_followers_closed';
  constructor() {
    super('log followers closed: the server is stopping');
  }
}

/** Entries per build and read. */
const PAGE = 500;
/** A blocking read ends after this even without a wake, so a lost wake delays a follower at most this long. */
const BACKSTOP_MS = 5_000;
const RETRY_MS = 1_000;
const WAKE_TTL_MS = 3_600_000;

const U64 = 2n ** 64n - 1n;
/** A stream id as Redis accepts it (each part at most 2^64-1), normalised; one out of range would fail the shared read. */
const StreamId = z
  .string()
  .regex(/^\d{1,20}-\d{1,20}$/)
  .transform((s) => s.split('-').map(BigInt) as [bigint, bigint])
  .refine(([ms, seq]) => ms <= U64 && seq <= U64)
  .transform(([ms, seq]) => `${ms}-${seq}`);

const compareDigits = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
/** Orders normalised stream ids (`ms-seq`, no leading zeros) without parsing numbers. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-') as [string, string];
  const [bm, bs] = b.split('-') as [string, string];
  return compareDigits(am, bm) || compareDigits(as, bs);
}

/** One follower: its position in the log and the entries handed to it that it has not taken yet. */
class Follower {
  private pending: LogEntry[] = [];
  private notify: (() => void) | undefined;
  ended = false;

  constructor(
    readonly buildId: string,
    /** The id of the last entry handed to it. */
    public cursor: string,
  ) {}

  /** Hands it the entries of `page` (consecutive, in stream order) after its cursor. */
  give(page: LogEntry[]): void {
    const first = page.findIndex((e) => compareIds(e.id, this.cursor) > 0);
    if (first < 0) return;
    for (let i = first; i < page.length; i++) this.pending.push(page[i]!);
    this.cursor = page.at(-1)!.id;
    this.notify?.();
  }

  end(): void {
    this.ended = true;
    this.notify?.();
  }

  /** What it was handed, waiting up to `ms` for something (answers nothing on timeout, abort or end). */
  async next(ms: number, signal: AbortSignal | undefined): Promise<LogEntry[]> {
    if (this.pending.length === 0 && !this.ended && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.notify = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });
        this.notify = done;
      });
    }
    return this.drain();
  }

  drain(): LogEntry[] {
    return this.pending.splice(0);
  }
}

type XReadReply = [key: string, rows: [id: string, fields: string[]][]][] | null;

/**
 * One blocking connection reading the logs of the builds given to it. A follower that joins while
 * a read is blocked, and is not covered by it, must restart it: the read also waits on a wake
 * stream of this reader, at the last wake id it saw, and a join XADDs to it. That cannot be lost
 * (unlike CLIENT UNBLOCK sent before the read arrives, or a short BLOCK that only bounds the delay):
 * a wake added before the read reaches Redis makes it answer at once, one added later wakes it.
 */
class LogReader {
  private readonly builds = new Map<string, Set<Follower>>();
  private conn: Redis | undefined;
  private loop: Promise<void> | undefined;
  /** The read in flight: where it started in each build's log. */
  private reading: Map<string, string> | undefined;
  private woken = false;
  private wakeLast = '0-0';
  private unpark: (() => void) | undefined;
  private readonly stop = new AbortController();

  constructor(
    private readonly redis: Redis,
    readonly wakeKey: string,
    private readonly connectionName: string,
  ) {}

  /** Builds it reads. */
  get load(): number {
    return this.builds.size;
  }

  follows(buildId: string): boolean {
    return this.builds.has(buildId);
  }

  add(f: Follower): void {
    const followers = this.builds.get(f.buildId) ?? new Set();
    followers.add(f);
    this.builds.set(f.buildId, followers);
    this.loop ??= this.run();
    const start = this.reading?.get(f.buildId);
    if (this.unpark) this.unpark();
    else if (this.reading && (start === undefined || compareIds(f.cursor, start) < 0)) this.wake();
  }

  remove(f: Follower): void {
    const followers = this.builds.get(f.buildId);
    if (!followers?.delete(f)) return;
    if (followers.size === 0) this.builds.delete(f.buildId);
    // Nobody left: end the blocking read now rather than at its timeout.
    if (this.builds.size === 0 && this.reading) this.wake();
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.unpark?.();
    this.conn?.disconnect();
    await this.loop;
    for (const followers of this.builds.values()) for (const f of followers) f.end();
    this.builds.clear();
  }

  private async run(): Promise<void> {
    while (!this.stop.signal.aborted) {
      if (this.builds.size === 0) {
        // No blocking read while nobody follows.
        await new Promise<void>((resolve) => (this.unpark = resolve));
        this.unpark = undefined;
        continue;
      }
      const from = this.startIds();
      const builds = new Map([...from.keys()].map((id) => [logKey(id), id]));
      this.reading = from;
      this.woken = false;
      let reply: XReadReply;
      try {
        reply = (await this.connection().xread('COUNT', PAGE, 'BLOCK', BACKSTOP_MS, 'STREAMS', this.wakeKey, ...builds.keys(), this.wakeLast, ...from.values())) as XReadReply;
      } catch {
        // Redis is away (the connection reconnects by itself) or the reader is closing.
        this.reading = undefined;
        await sleep(RETRY_MS, undefined, { signal: this.stop.signal }).catch(() => undefined);
        continue;
      }
      this.reading = undefined;
      for (const [key, rows] of reply ?? []) {
        if (key === this.wakeKey) this.wakeLast = rows.at(-1)?.[0] ?? this.wakeLast;
        else this.fanOut(builds.get(key)!, from.get(builds.get(key)!)!, rows.map(toEntry));
      }
    }
  }

  /** Per build, the smallest position of its followers: the read serves all of them. */
  private startIds(): Map<string, string> {
    const from = new Map<string, string>();
    for (const [buildId, followers] of this.builds) {
      for (const f of followers) {
        const min = from.get(buildId);
        if (min === undefined || compareIds(f.cursor, min) < 0) from.set(buildId, f.cursor);
      }
    }
    return from;
  }

  private fanOut(buildId: string, start: string, page: LogEntry[]): void {
    for (const f of this.builds.get(buildId) ?? []) {
      // One who joined behind where this read started gets its entries from the next read (no gap).
      if (compareIds(f.cursor, start) >= 0) f.give(page);
    }
  }

  private wake(): void {
    if (this.woken || this.stop.signal.aborted) return;
    this.woken = true;
    // Lost only if Redis is away; the read then ends at its backstop timeout.
    this.redis.multi().xadd(this.wakeKey, 'MAXLEN', 1, '*', 'w', '1').pexpire(this.wakeKey, WAKE_TTL_MS).exec().catch(() => undefined);
  }

  private connection(): Redis {
    if (!this.conn) {
      // Queues the read until connected; reconnects by itself, so its errors are not the followers'.
      this.conn = this.redis.duplicate({ connectionName: this.connectionName, enableOfflineQueue: true });
      this.conn.on('error', () => undefined);
    }
    return this.conn;
  }
}

/** The build-log followers of one process; `close()` ends every follower and the readers' connections. */
export class LogFollowers {
  /** Slots of readers, each made (with its connection) when first needed. */
  private readonly readers: (LogReader | undefined)[];
  private readonly wakePrefix = `${keyPrefixes.logFollowers}${randomBytes(8).toString('hex')}:wake:`;
  private closed = false;

  constructor(private readonly opts: LogFollowersOptions) {
    this.readers = Array.from({ length: opts.readers }, () => undefined);
  }

  /**
   * Follows a build's log: yields everything already written (after `after`), then new entries as
   * they come, until the `end` entry, `isOver()` says the build has ended, or `signal` aborts.
   * Throws LogFollowersClosedError when the followers close meanwhile.
   */
  async *follow(buildId: string, opts: FollowOptions = {}): AsyncGenerator<LogEntry> {
    if (this.closed) throw new LogFollowersClosedError();
    const after = StreamId.safeParse(opts.after);
    const follower = new Follower(buildId, after.success ? after.data : '0-0');
    const reader = this.readerFor(buildId);
    reader.add(follower);
    try {
      for (;;) {
        const got = await follower.next(this.opts.idleMs ?? 1000, opts.signal);
        if (opts.signal?.aborted) return;
        if (follower.ended) throw new LogFollowersClosedError();
        for (const e of got) {
          yield e;
          if (e.kind === 'end') return;
        }
        if (got.length === 0 && opts.isOver && (await opts.isOver())) {
          reader.remove(follower);
          yield* this.rest(follower, opts.signal);
          return;
        }
      }
    } finally {
      reader.remove(follower);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const readers = this.readers.filter((r): r is LogReader => r !== undefined);
    await Promise.all(readers.map((r) => r.close()));
    if (readers.length > 0) await this.opts.redis.del(...readers.map((r) => r.wakeKey)).catch(() => undefined);
  }

  /** What a follower of a log nobody closed has not seen: what it was handed, then the rest of the log. */
  private async *rest(follower: Follower, signal: AbortSignal | undefined): AsyncGenerator<LogEntry> {
    for (const e of follower.drain()) {
      yield e;
      if (e.kind === 'end') return;
    }
    for (let after = follower.cursor; !signal?.aborted; ) {
      const page = await readLog(this.opts.redis, follower.buildId, after);
      if (page.length === 0) return;
      for (const e of page) {
        yield e;
        if (e.kind === 'end') return;
      }
      after = page.at(-1)!.id;
    }
  }

  /** The reader already reading this build, else the one reading the fewest (a slot without a reader reads none). */
  private readerFor(buildId: string): LogReader {
    const following = this.readers.find((r) => r?.follows(buildId));
    if (following) return following;
    let best = 0;
    for (let i = 1; i < this.readers.length; i++) if ((this.readers[i]?.load ?? 0) < (this.readers[best]?.load ?? 0)) best = i;
    return (this.readers[best] ??= new LogReader(this.opts.redis, `${this.wakePrefix}${best}`, this.opts.connectionName ?? 'slipway:log-reader'));
  }
}
