import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BuildStore, buildKeys, type BuildRecord } from '../store/index.js';
import { Dispatcher, jobOptions, openWorkQueue, WorkJob } from './dispatcher.js';
import { BuildCancelled, BuildTimeout, Superseded, WorkerStopping } from './errors.js';
import { WORK_QUEUE, laneKeys } from './keys.js';
import type { BuildLog, BuildOutcome, BuildRunner } from './runner.js';
import { LaneScripts, type AbortNote } from './scripts.js';

export interface LaneWorkerOptions {
  /** Command connection (shared is fine). The worker adds exactly two: BullMQ's blocking one and one subscriber. */
  redis: Redis;
  runner: BuildRunner;
  /** Builds this worker runs at once. */
  slots: number;
  log: Logger;
  /** Milliseconds since the epoch; default Date.now. Record timestamps come from it. */
  clock?: () => number;
  /** BullMQ lock of a running build; renewed every lockMs/2. Default 30 s. */
  lockMs?: number;
  /** BullMQ stalled-job check interval. Default 15 s: takeover ≤ lockMs + 2 × stalledMs = 60 s. */
  stalledMs?: number;
  /** Times a build may be taken over after losing its worker; one more loss ends it `failed`, `worker lost`. Default 2. */
  maxLost?: number;
  /** Safety-net interval: heartbeat, dispatch, re-add lost jobs, missed aborts. Default 5 s. */
  reconcileMs?: number;
  /** A picked build whose job never reached BullMQ (a dispatcher crashed) is re-added after this. Default 10 s. */
  dispatchGraceMs?: number;
  /**
   * Safety net: a build running longer is aborted and ends `failed`, `timed out after …`.
   * The runner enforces the repository's own `builder.timeout`; this only catches a runner that
   * does not stop. Default 24 h.
   */
  buildTimeoutMs?: number;
  /** Attempts of a build whose runner fails with a retryable error. Default 3. */
  maxAttempts?: number;
  /** Pause before a retryable failure goes back to its lane, times the attempt number. Default 2 s. */
  retryDelayMs?: number;
  onChange?: (record: BuildRecord) => void;
  /** Where a build's output goes (builders wire the Redis log stream); default: debug lines in `log`. */
  openLog?: (build: BuildRecord) => BuildLog;
  /** Stable id for this worker (default random). */
  id?: string;
}

interface Running {
  ctl: AbortController;
  owner: string;
}

/**
 * Runs builds from the work queue: claims the record, runs the BuildRunner with an AbortSignal,
 * ends the record exactly once, gives the slot back and dispatches the next builds.
 */
export class LaneWorker {
  readonly id: string;
  private readonly clock: () => number;
  private readonly scripts: LaneScripts;
  private readonly store: BuildStore;
  private readonly queue;
  private readonly dispatcher: Dispatcher;
  private readonly running = new Map<string, Running>();
  private readonly lockMs: number;
  private readonly reconcileMs: number;
  private readonly heartbeatMs: number;
  private worker: Worker<WorkJob> | undefined;
  private sub: Redis | undefined;
  private own: Redis | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly o: LaneWorkerOptions) {
    if (!Number.isInteger(o.slots) || o.slots < 1) throw new Error('slots must be a whole number ≥ 1');
    this.id = o.id ?? `w-${randomUUID().slice(0, 8)}`;
    this.clock = o.clock ?? Date.now;
    this.scripts = new LaneScripts(o.redis);
    this.store = new BuildStore(o.redis);
    this.queue = openWorkQueue(o.redis, o.log);
    this.dispatcher = new Dispatcher({ scripts: this.scripts, queue: this.queue, clock: this.clock, log: o.log });
    this.lockMs = o.lockMs ?? 30_000;
    this.reconcileMs = o.reconcileMs ?? 5_000;
    this.heartbeatMs = Math.min(5_000, Math.max(100, Math.floor(this.lockMs / 2)));
  }

  async start(): Promise<void> {
    if (this.worker) return;
    await this.heartbeat();
    // BullMQ workers need a connection that waits out Redis outages (maxRetriesPerRequest: null,
    // offline queue on); use the caller's when it does, else one duplicate of it.
    const shared = this.o.redis.options.maxRetriesPerRequest === null && this.o.redis.options.enableOfflineQueue !== false;
    const connection = shared ? this.o.redis : this.o.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
    if (!shared) this.own = connection;
    const worker = new Worker<WorkJob>(WORK_QUEUE.name, (job, token, signal) => this.process(job, token, signal), {
      connection: connection as never,
      prefix: WORK_QUEUE.prefix,
      name: this.id,
      concurrency: this.o.slots,
      lockDuration: this.lockMs,
      stalledInterval: this.o.stalledMs ?? 15_000,
      maxStalledCount: this.o.maxLost ?? 2,
      autorun: false,
    });
    this.worker = worker;
    worker.on('error', (err) => this.o.log.warn({ err }, 'work queue error'));
    // A build lost more than maxLost times: BullMQ fails its job without calling the processor.
    worker.on('failed', (job, err) => {
      if (job && /stalled more than allowable limit/.test(err.message)) void this.endLost(job.data.buildId, String(job.id));
    });
    const sub = this.o.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
    this.sub = sub;
    sub.on('message', (_channel: string, message: string) => this.onAbortMessage(message));
    sub.on('error', (err: Error) => this.o.log.warn({ err }, 'abort subscriber error'));
    await sub.subscribe(laneKeys.abortChannel);
    void worker.run().catch((err) => this.o.log.error({ err }, 'work queue loop ended'));
    await worker.waitUntilReady();

    this.timers.push(setInterval(() => void this.heartbeat().catch(() => undefined), this.heartbeatMs));
    this.timers.push(setInterval(() => void this.reconcile().catch((err) => this.o.log.warn({ err }, 'reconcile failed')), this.reconcileMs));
    await this.dispatcher.kick();
    this.o.log.info({ worker: this.id, slots: this.o.slots }, 'lane worker started');
  }

  /**
   * Takes no new work; a running build may finish for up to `graceMs`, then it is aborted and
   * handed back to its lane (same record, status queued) for another worker. Resolves when done.
   */
  close(graceMs = 20_000): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.scripts.leave(this.id).catch(() => undefined);
    const worker = this.worker;
    if (worker) {
      const closed = worker.close();
      if (!(await settlesWithin(closed, graceMs))) {
        for (const r of this.running.values()) r.ctl.abort(new WorkerStopping());
        if (!(await settlesWithin(closed, 8_000))) await worker.close(true);
      }
    }
    if (this.sub) this.sub.disconnect();
    await this.dispatcher.kick();
    await this.queue.close();
    if (this.own) this.own.disconnect();
    this.o.log.info({ worker: this.id }, 'lane worker stopped');
  }

  private async heartbeat(): Promise<void> {
    if (this.closing) return;
    await this.scripts.heartbeat(this.id, this.o.slots, this.clock() + 3 * this.heartbeatMs);
  }

  private onAbortMessage(message: string): void {
    let note: AbortNote;
    try {
      note = JSON.parse(message) as AbortNote;
    } catch {
      return;
    }
    this.running.get(note.id)?.ctl.abort(abortError(note));
  }

  private async process(job: Job<WorkJob>, token: string | undefined, bullSignal?: AbortSignal): Promise<void> {
    const data = WorkJob.safeParse(job.data);
    if (!data.success || !job.id) {
      this.o.log.error({ job: job.id }, 'work job with an invalid payload dropped');
      return;
    }
    const id = data.data.buildId;
    const jobId = job.id;
    const owner = `${this.id}:${token ?? randomUUID()}`;
    const now = this.clock();
    const claim = await persist(() => this.scripts.claim(now, id, jobId, owner, new Date(now).toISOString()));
    if (claim.kind === 'stale') return;
    const record = claim.record;
    this.changed(record);
    if (claim.kind === 'resume') {
      this.o.log.warn({ build: id, attempt: claim.attempts }, 'took over a build whose worker was lost');
      if (claim.abort) {
        await this.end(id, jobId, abortError(claim.abort), null);
        return;
      }
    }

    const ctl = new AbortController();
    this.running.set(id, { ctl, owner });
    const onWithdrawn = () => ctl.abort(new JobWithdrawn());
    bullSignal?.addEventListener('abort', onWithdrawn, { once: true });
    const limit = this.o.buildTimeoutMs ?? 86_400_000;
    const timer = setTimeout(() => ctl.abort(new BuildTimeout(limit)), limit);
    const log = this.openLog(record);
    if (claim.kind === 'resume') log.line(`slipway: resuming on worker ${this.id} after the previous worker was lost`);
    let outcome: BuildOutcome | null = null;
    let failure: unknown = null;
    try {
      outcome = await this.o.runner.run(record, { signal: ctl.signal, log });
    } catch (err) {
      failure = err;
    } finally {
      clearTimeout(timer);
      bullSignal?.removeEventListener('abort', onWithdrawn);
      this.running.delete(id);
    }
    const reason: unknown = ctl.signal.aborted ? ctl.signal.reason : null;
    if (reason instanceof JobWithdrawn) {
      // The record stays running; whoever holds or takes over the job ends it.
      this.o.log.warn({ build: id }, 'the work queue withdrew a running build from this worker');
      return;
    }
    if (outcome) {
      await this.end(id, jobId, null, outcome);
      return;
    }
    if (reason instanceof WorkerStopping) {
      await this.handBack(id, jobId, owner, 'worker stopping');
      return;
    }
    const cause = reason ?? failure;
    const retryable = (cause as { retryable?: unknown } | null)?.retryable === true;
    if (retryable && claim.attempts < (this.o.maxAttempts ?? 3)) {
      this.o.log.warn({ build: id, err: cause, attempt: claim.attempts }, 'build failed with a retryable error; queued again');
      log.line(`slipway: attempt ${claim.attempts} failed (${oneLine(errorMessage(cause))}); trying again`);
      await new Promise((r) => setTimeout(r, (this.o.retryDelayMs ?? 2_000) * claim.attempts));
      await this.handBack(id, jobId, owner, 'retry');
      return;
    }
    await this.end(id, jobId, cause, null);
  }

  /** Ends the build once: success with its outcome, or the final status `cause` stands for. */
  private async end(id: string, jobId: string, cause: unknown, outcome: BuildOutcome | null): Promise<void> {
    const finishedAt = this.iso();
    let status: string;
    const fields: Record<string, unknown> = { finishedAt };
    if (outcome) {
      if (/^sha256:[0-9a-f]{64}$/.test(outcome.digest)) {
        status = 'succeeded';
        fields.digest = outcome.digest;
        fields.error = null;
      } else {
        status = 'failed';
        fields.error = `runner returned an invalid digest: ${oneLine(String(outcome.digest))}`;
      }
    } else if (cause instanceof BuildCancelled) {
      status = 'cancelled';
      fields.error = cause.message;
    } else if (cause instanceof Superseded) {
      status = 'superseded';
      fields.supersededBy = cause.by;
    } else {
      status = 'failed';
      fields.error = oneLine(errorMessage(cause)) || 'build failed';
    }
    const r = await persist(() => this.scripts.finish(this.clock(), id, jobId, status, fields));
    await this.dispatcher.enqueue(r.picked);
    if (r.record) this.changed(r.record);
  }

  private async handBack(id: string, jobId: string, owner: string, why: string): Promise<void> {
    const r = await persist(() => this.scripts.handback(this.clock(), id, owner));
    if (r.kind === 'handed-back') {
      this.o.log.info({ build: id, why }, 'build handed back to its lane');
      await this.dispatcher.enqueue(r.picked);
      if (r.record) this.changed(r.record);
    } else if (r.kind === 'abort') {
      await this.end(id, jobId, abortError(r.note), null);
    }
  }

  private async endLost(id: string, jobId: string): Promise<void> {
    const r = await this.scripts.finish(this.clock(), id, jobId, 'failed', { finishedAt: this.iso(), error: 'worker lost' }).catch(() => null);
    if (!r) return;
    await this.dispatcher.enqueue(r.picked);
    if (r.record) {
      this.o.log.error({ build: id }, 'build failed: its worker was lost too many times');
      this.changed(r.record);
    }
  }

  /**
   * The safety net: keeps this worker's slots announced, dispatches, re-adds jobs that never
   * reached BullMQ, ends builds whose job BullMQ gave up on, and applies aborts whose pub/sub
   * message was missed.
   */
  private async reconcile(): Promise<void> {
    if (this.closing) return;
    await this.heartbeat();
    const active = await this.o.redis.hgetall(laneKeys.active);
    for (const [id, raw] of Object.entries(active)) {
      const held = JSON.parse(raw) as { job: string; at: number };
      const state = await this.queue.getJobState(held.job);
      if (state !== 'unknown' && state !== 'failed' && state !== 'completed') continue;
      const record = await this.store.get(id);
      if (record?.status === 'running') {
        await this.endLost(id, held.job);
      } else if (record?.status === 'queued' && this.clock() - held.at > (this.o.dispatchGraceMs ?? 10_000)) {
        // Dispatched but never started: its job never reached BullMQ, or ended without a claim.
        this.o.log.warn({ build: id, state }, 're-adding a dispatched build whose job was missing');
        if (state !== 'unknown') await this.queue.remove(held.job);
        await this.queue.add('build', { v: 1, buildId: id }, jobOptions(held.job));
      }
    }
    for (const id of this.running.keys()) {
      const note = await this.o.redis.hget(buildKeys.record(id), '_abort');
      if (note) this.onAbortMessage(note);
    }
    await this.dispatcher.kick();
  }

  private openLog(record: BuildRecord): BuildLog {
    try {
      const log = this.o.openLog?.(record);
      if (log) return log;
    } catch (err) {
      this.o.log.warn({ err, build: record.id }, 'could not open the build log; logging to the worker log');
    }
    return this.defaultLog(record.id);
  }

  private defaultLog(id: string): BuildLog {
    const log = this.o.log.child({ build: id });
    return { line: (text) => log.debug(text), step: (name) => log.debug({ step: name }, 'step') };
  }

  private changed(record: BuildRecord): void {
    try {
      this.o.onChange?.(record);
    } catch (err) {
      this.o.log.warn({ err, build: record.id }, 'onChange listener failed');
    }
  }

  private iso(): string {
    return new Date(this.clock()).toISOString();
  }
}

/** BullMQ aborted the job on this worker (forced close): the build is left for a takeover. */
class JobWithdrawn extends Error {}

function abortError(note: AbortNote): Error {
  return note.reason === 'superseded' ? new Superseded(note.by) : new BuildCancelled(note.by);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function oneLine(s: string): string {
  return (s.split('\n').find((l) => l.trim() !== '') ?? '').trim().slice(0, 500);
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
  const done = p.then(
    () => true,
    () => true,
  );
  const ok = await Promise.race([done, timeout]);
  clearTimeout(t);
  return ok;
}

/** Retries a Redis write while Redis is unreachable (up to ~2 min), so a finished build is recorded once it is back. */
async function persist<T>(fn: () => Promise<T>): Promise<T> {
  let delay = 100;
  const until = Date.now() + 120_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}
