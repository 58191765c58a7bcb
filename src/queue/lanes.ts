import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BuildStore, encodeBuild, type BuildRecord, type Receipt, type VersionGuard } from '../store/index.js';
import { BuildNotFound, ConflictError, InvalidSubmission } from './errors.js';
import { Dispatcher, openWorkQueue, type WorkJob } from './dispatcher.js';
import { LaneScripts, type Submission, type SubmissionAnswer } from './scripts.js';

export interface LanesOptions {
  /** Shared command connection (the lane scripts and record reads); the lanes open no other connection. */
  redis: Redis;
  log: Logger;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  /**
   * Called with the fresh record after every state change made here (intake wires its EventBus),
   * except those `events` already announced.
   */
  onChange?: (record: BuildRecord) => void;
  /**
   * The EventBus channel of builds that have not started (src/store `keys.eventsQueued`, where
   * eventChannel routes them): when set, `submit` publishes the records it creates and supersedes
   * itself, inside the same script (atomically with the change, no extra round trip, no record read
   * back), one message per group commit, and does not call `onChange` for them.
   */
  events?: string;
}

export interface SubmitOptions {
  /** The repository's `builder.concurrency` (default 1): builds of it that may run at once. */
  concurrency?: number;
  /** The repository's `builder.cancel_superseded`: a newer push also cancels that ref's running build. */
  cancelSuperseded?: boolean;
  /**
   * The idempotency record of the request (a webhook delivery's decision): the builds are
   * submitted only when its key is new, and it is stored in the same atomic step.
   */
  receipt?: Receipt;
  /** Submit only while this holds (the repository's config the builds were decided with is still current). */
  guard?: VersionGuard;
}

export interface SubmitResult {
  /**
   * `queued`: all of it is in Redis. Nothing was submitted when `duplicate` (the receipt's key
   * existed), `stale` (the guard did not hold) or `replayed` (the receipt's push is older than its
   * ref's newest accepted push, whose pushed_at is `newest`).
   */
  outcome: 'queued' | 'duplicate' | 'stale' | 'replayed';
  newest?: number;
  /** Older still-queued builds of the same refs, now `superseded`. */
  superseded: string[];
  /** Running builds of the same refs asked to stop (cancel_superseded); they end `superseded`. */
  aborted: string[];
}

/**
 * Builds per script call at most (a batch closes once it holds this many): keeps the script's
 * multi-key commands well within Lua's limit on arguments.
 */
const MAX_BATCH_BUILDS = 400;

/**
 * The producer side of the lanes: submit new builds, cancel builds. Used by the API and the
 * webhook intake; any number of processes may use it at once.
 */
export class Lanes {
  readonly store: BuildStore;
  private readonly scripts: LaneScripts;
  private readonly queue: Queue<WorkJob>;
  private readonly dispatcher: Dispatcher;
  private readonly clock: () => number;
  /** Submissions waiting for the end of this event-loop turn (see `inBatch`). */
  private pending: { sub: Submission; resolve: (a: SubmissionAnswer) => void; reject: (err: unknown) => void }[] = [];
  private pendingBuilds = 0;

  constructor(private readonly o: LanesOptions) {
    this.clock = o.clock ?? Date.now;
    this.store = new BuildStore(o.redis);
    this.scripts = new LaneScripts(o.redis);
    this.queue = openWorkQueue(o.redis, o.log);
    this.dispatcher = new Dispatcher({ scripts: this.scripts, queue: this.queue, clock: this.clock, log: o.log });
  }

  /**
   * Atomically stores the records (status queued) and appends each to its repository's lane;
   * an older still-queued build of the same repo+ref whose rules are all built again here is
   * marked `superseded` (supersededBy = the new build carrying its first rule). Resolves once
   * all of it is in Redis.
   */
  async submit(builds: BuildRecord[], opts: SubmitOptions = {}): Promise<SubmitResult> {
    if (builds.length === 0) return { outcome: 'queued', superseded: [], aborted: [] };
    if (builds.length > MAX_BATCH_BUILDS) throw new InvalidSubmission(`at most ${MAX_BATCH_BUILDS} builds at once (got ${builds.length})`, 'builds');
    const records = builds.map((b, i) => validateNew(b, i));
    if (records.length > 1) {
      const ids = new Set<string>();
      records.forEach((r, i) => {
        if (ids.has(r.id)) throw new InvalidSubmission(`duplicate build id ${r.id}`, `builds[${i}].id`);
        ids.add(r.id);
      });
    }
    if (opts.concurrency !== undefined && !(Number.isInteger(opts.concurrency) && opts.concurrency >= 1 && opts.concurrency <= 64)) {
      throw new InvalidSubmission('concurrency must be a whole number from 1 to 64', 'concurrency');
    }
    // One object shape whichever options are given (spreading optional ones made a new shape per call).
    const answer = await this.inBatch({
      builds: records.map((r) => ({ id: r.id, repo: r.repo, ref: r.ref, rules: r.rules, fields: encodeBuild(r) })),
      concurrency: opts.concurrency,
      cancelSuperseded: opts.cancelSuperseded,
      receipt: opts.receipt,
      guard: opts.guard,
    });
    if (answer.outcome === 'duplicate_build') throw new ConflictError(`build ${answer.id} already exists`, 'duplicate_build');
    if (answer.outcome === 'replayed') return { outcome: 'replayed', superseded: [], aborted: [], newest: answer.newest };
    if (answer.outcome !== 'queued') return { outcome: answer.outcome, superseded: [], aborted: [] };
    if (!this.o.events) {
      for (const r of records) this.changed(r);
      for (const r of answer.supersededRecords) this.changed(r);
    }
    return { outcome: 'queued', superseded: answer.superseded, aborted: answer.aborted };
  }

  /**
   * Group commit: the submissions made in one event-loop turn (concurrent webhook deliveries) go
   * to Redis as one script call, applied in the order they were made, each as if alone; then the
   * builds it dispatched are added to the work queue, and each submission gets its answer.
   */
  private inBatch(sub: Submission): Promise<SubmissionAnswer> {
    return new Promise((resolve, reject) => {
      const batch = this.pending;
      batch.push({ sub, resolve, reject });
      this.pendingBuilds += sub.builds.length;
      if (batch.length === 1) setImmediate(() => void this.flush(batch));
      if (this.pendingBuilds >= MAX_BATCH_BUILDS) void this.flush(batch);
    });
  }

  private async flush(batch: Lanes['pending']): Promise<void> {
    if (this.pending !== batch) return;
    this.pending = [];
    this.pendingBuilds = 0;
    try {
      const now = this.clock();
      const { answers, picked } = await this.scripts.submit({
        now,
        finishedAt: new Date(now).toISOString(),
        ...(this.o.events ? { events: this.o.events } : {}),
        subs: batch.map((b) => b.sub),
      });
      await this.dispatcher.enqueue(picked);
      batch.forEach((b, i) => b.resolve(answers[i]!));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /**
   * queued → cancelled at once; running → the runner's AbortSignal is aborted on whichever worker
   * holds it and the record ends `cancelled` when the runner stops (the answer still says
   * running). Ended → ConflictError (409); unknown id → BuildNotFound (404).
   */
  async cancel(id: string, by: string): Promise<BuildRecord> {
    const now = this.clock();
    const { outcome, record, picked } = await this.scripts.cancel(now, id, by, new Date(now).toISOString(), `cancelled by ${by}`);
    if (outcome === 'missing' || !record) throw new BuildNotFound(id);
    if (outcome === 'ended') throw new ConflictError(`build ${id} has already ended (${record.status})`);
    if (outcome === 'cancelled') {
      await this.dispatcher.enqueue(picked);
      this.changed(record);
    }
    return record;
  }

  /** Runs one dispatch pass (normally triggered by submit, build ends and workers' timers). */
  dispatch(): Promise<void> {
    return this.dispatcher.kick();
  }

  /** Closes the work-queue handle; the shared connection stays open (it is the caller's). */
  async close(): Promise<void> {
    await this.dispatcher.kick();
    await this.queue.close();
  }

  private changed(record: BuildRecord): void {
    try {
      this.o.onChange?.(record);
    } catch (err) {
      this.o.log.warn({ err, build: record.id }, 'onChange listener failed');
    }
  }
}

/**
 * The records come typed from intake's own builders (src/webhooks toBuildRecords), so this checks
 * what the lane scripts rely on rather than re-parsing every field with zod (the webhook's hot path).
 */
function validateNew(r: BuildRecord, i: number): BuildRecord {
  if (typeof r.id !== 'string') throw new InvalidSubmission('build id must be a string', `builds[${i}].id`);
  if (typeof r.repo !== 'string') throw new InvalidSubmission('repo must be a string', `builds[${i}].repo`);
  if (typeof r.ref !== 'string' || r.ref.length === 0) throw new InvalidSubmission('ref must be a non-empty string', `builds[${i}].ref`);
  if (!Array.isArray(r.rules) || !r.rules.every((x) => typeof x === 'string')) throw new InvalidSubmission('rules must be a list of names', `builds[${i}].rules`);
  if (r.status !== 'queued') throw new InvalidSubmission('a new build must be queued', `builds[${i}].status`);
  if (r.id.length === 0 || /\s/.test(r.id)) throw new InvalidSubmission('build id must be non-empty without spaces', `builds[${i}].id`);
  if (!/^[^/\s]+\/[^/\s]+$/.test(r.repo)) throw new InvalidSubmission('repo must be owner/name', `builds[${i}].repo`);
  return r;
}
