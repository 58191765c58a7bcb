import { randomBytes } from 'node:crypto';
import type { EnvironmentSpec } from '../rules/index.js';
import type { DeploymentRecord } from '../store/records.js';
import type { AuditSink, DeploymentEvents } from './deployer.js';
import { ReleaseRollout } from './release.js';
import type { DeploymentStore } from './store.js';
import { rolloutRequest, takenOn, type RolloutOutcome, type RolloutRequest, type Target } from './target.js';

export interface DeployLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface DeployWorkerOptions {
  store: DeploymentStore;
  target: Target;
  audit?: AuditSink;
  events?: DeploymentEvents;
  log?: DeployLogger;
  clock?: () => Date;
  /** How often queued requests and orphaned rollouts are looked for. */
  pollMs?: number;
  /** Lock time to live; a worker that dies mid-rollout is replaced after at most this long. */
  lockTtlMs?: number;
  /** Slipway's own deadline for one rollout; default from the environment's update settings. */
  deadlineMs?: (config: EnvironmentSpec) => number;
}

/**
 * Runs queued rollouts, one at a time per environment across all workers (a Redis lock per environment),
 * and settles rollouts a dead worker left `running` from the service's real state (Swarm keeps rolling).
 */
export class DeployWorker {
  private readonly owner = `${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly running = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly clock: () => Date;
  private readonly pollMs: number;
  private readonly lockTtlMs: number;
  private readonly releases: ReleaseRollout;

  constructor(private readonly opts: DeployWorkerOptions) {
    this.clock = opts.clock ?? (() => new Date());
    this.pollMs = opts.pollMs ?? 100;
    this.lockTtlMs = opts.lockTtlMs ?? 15_000;
    this.releases = new ReleaseRollout({
      store: opts.store,
      target: opts.target,
      deadlineMs: (config) => this.deadline(config),
      log: opts.log,
      progress: async (record) => {
        await opts.store.save(record);
        this.publish(record);
      },
    });
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  /** Stops taking work. Rollouts in flight are left to Swarm; their lock expires and a worker settles them later. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('deploy worker stopping'));
    await this.loop;
    await Promise.allSettled([...this.running.values()]);
    this.loop = null;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.opts.log?.error({ err }, 'deploy worker tick failed');
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  private async tick(): Promise<void> {
    const { store } = this.opts;
    // Orphans first: a rollout left running must settle before the environment takes the next one.
    for (const id of await store.activeIds()) {
      const record = await store.get(id);
      if (!record || (record.status !== 'pending' && record.status !== 'running')) {
        await store.dropActive(id);
        continue;
      }
      const env = store.envKey(record);
      if (this.running.has(env) || this.abort.signal.aborted) continue;
      if (!(await store.rolloutLock(env, this.owner).tryTake(this.lockTtlMs))) continue;
      // Taken from the queue by a worker that died before starting it, or left running by one.
      this.spawn(env, () => (record.status === 'pending' ? this.execute(id) : this.reconcile(record)));
    }
    for (const env of await store.queuedEnvironments()) {
      if (this.running.has(env) || this.abort.signal.aborted) continue;
      if (!(await store.rolloutLock(env, this.owner).tryTake(this.lockTtlMs))) continue;
      // A rollout of this environment may still be recorded active (its worker died): settle it first.
      const orphan = await this.activeOf(env);
      if (orphan) {
        this.spawn(env, () => (orphan.status === 'pending' ? this.execute(orphan.id) : this.reconcile(orphan)));
        continue;
      }
      const id = await store.takePending(env);
      if (!id) {
        await store.rolloutLock(env, this.owner).release();
        continue;
      }
      this.spawn(env, () => this.execute(id));
    }
  }

  private spawn(env: string, work: () => Promise<void>): void {
    const heartbeat = setInterval(() => {
      void this.opts.store.rolloutLock(env, this.owner).renew(this.lockTtlMs).catch(() => undefined);
    }, Math.max(1000, this.lockTtlMs / 3));
    const p = work()
      .catch((err) => this.opts.log?.error({ err, env }, 'rollout handling failed'))
      .finally(async () => {
        clearInterval(heartbeat);
        this.running.delete(env);
        await this.opts.store.rolloutLock(env, this.owner).release().catch(() => undefined);
      });
    this.running.set(env, p);
  }

  private async activeOf(env: string): Promise<DeploymentRecord | null> {
    const { store } = this.opts;
    for (const id of await store.activeIds()) {
      const r = await store.get(id);
      if (r && store.envKey(r) === env) return r;
    }
    return null;
  }

  private async execute(id: string): Promise<void> {
    const { store, target } = this.opts;
    const record = await store.get(id);
    const plan = await store.plan(id).catch((err: Error) => err);
    if (!record || record.status !== 'pending') {
      await store.dropActive(id);
      return;
    }
    if (!plan || plan instanceof Error) {
      await this.end(record, { status: 'failed', reason: plan ? `the rollout plan is unreadable: ${plan.message}` : 'the rollout plan is missing' });
      return;
    }
    const running: DeploymentRecord = { ...record, status: 'running', startedAt: this.clock().toISOString() };
    await store.save(running);
    this.publish(running);
    this.opts.log?.info({ deployment: id, repo: record.repo, environment: record.environment, digest: record.digest }, 'rollout started');
    if (plan.config.services) return this.release(running, plan.config);
    const req = rolloutRequest(running, plan.config);
    let outcome: RolloutOutcome;
    try {
      await target.apply(req);
      outcome = await target.settle(req, Date.now() + this.deadline(plan.config), this.abort.signal);
    } catch (err) {
      if (this.abort.signal.aborted) return; // left running: the next worker settles it from Swarm's state
      outcome = { status: 'failed', reason: (err as Error).message };
    }
    await this.endAndConfirm(running, req, outcome);
  }

  /**
   * Ends the record; after a `confirming` success keeps the environment's lock until Swarm closes the
   * update too, so the next rollout never cuts it short. A rollback in that tail amends the record.
   */
  private async endAndConfirm(record: DeploymentRecord, req: RolloutRequest, outcome: RolloutOutcome): Promise<void> {
    const previous = await this.opts.store.current(record);
    const ended = await this.end(record, outcome);
    if (outcome.status !== 'succeeded' || !outcome.confirming) return;
    const { update } = req.config;
    let confirmed: RolloutOutcome;
    try {
      confirmed = await this.opts.target.confirm(req, Date.now() + update.delayMs + update.monitorMs + 60_000, this.abort.signal);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.opts.log?.error({ err, deployment: record.id }, 'could not confirm the end of the update');
      return;
    }
    if (confirmed.status === 'succeeded') return;
    await this.opts.store.revertCurrent(ended, previous?.id ?? null);
    await this.end(ended, confirmed);
  }

  /** Rolls a release of services out (or on, after a worker died mid-release) and ends it. */
  private async release(record: DeploymentRecord, config: EnvironmentSpec): Promise<void> {
    let result;
    try {
      result = await this.releases.run(record, config, this.abort.signal);
    } catch (err) {
      if (this.abort.signal.aborted) return; // left running: the next worker carries it on from its saved progress
      result = { record: (await this.opts.store.get(record.id)) ?? record, outcome: { status: 'failed', reason: (err as Error).message } as const };
    }
    await this.end(result.record, result.outcome);
  }

  /** Settles a rollout whose worker died, from what the service really runs now. */
  private async reconcile(record: DeploymentRecord): Promise<void> {
    const { store, target } = this.opts;
    const plan = await store.plan(record.id);
    if (!plan) {
      await this.end(record, { status: 'failed', reason: 'the rollout plan is missing' });
      return;
    }
    this.opts.log?.info({ deployment: record.id }, 'settling a rollout left running');
    if (plan.config.services) return this.release(record, plan.config);
    const req = rolloutRequest(record, plan.config);
    let outcome: RolloutOutcome;
    try {
      const state = await target.state(plan.config);
      // The worker died before Swarm accepted the change: apply it now (apply is idempotent).
      if (!takenOn(state, req)) await target.apply(req);
      outcome = await target.settle(req, Date.now() + this.deadline(plan.config), this.abort.signal);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      outcome = { status: 'failed', reason: (err as Error).message };
    }
    await this.endAndConfirm(record, req, outcome);
  }

  private async end(record: DeploymentRecord, outcome: RolloutOutcome): Promise<DeploymentRecord> {
    const { store } = this.opts;
    const previous = await store.current(record);
    const ended: DeploymentRecord = {
      ...record,
      status: outcome.status,
      finishedAt: this.clock().toISOString(),
      error: outcome.status === 'succeeded' ? null : outcome.reason,
    };
    await store.finish(ended);
    this.publish(ended);
    this.opts.log?.info({ deployment: record.id, status: ended.status, error: ended.error }, 'rollout ended');
    await this.opts.audit?.append({
      at: ended.finishedAt!,
      actor: record.by,
      action: `rollout.${record.trigger}`,
      repo: record.repo,
      environment: record.environment,
      from: previous?.digest ?? null,
      to: record.digest,
      result: ended.error ? `${ended.status}: ${ended.error}` : ended.status,
      ...(ended.services ? { changes: ended.services.map((s) => `${s.name}: ${s.before ?? 'none'} → ${s.digest} (${s.status})`) } : {}),
    });
    return ended;
  }

  /** A lost event never fails a rollout. */
  private publish(record: DeploymentRecord): void {
    void Promise.resolve(this.opts.events?.publish({ type: 'deployment', record })).catch((err: Error) =>
      this.opts.log?.error({ err, deployment: record.id }, 'deployment event not published'),
    );
  }


  private deadline(config: EnvironmentSpec): number {
    if (this.opts.deadlineMs) return this.opts.deadlineMs(config);
    // Swarm has no deadline while a task fails to start; allow each batch a minute to start and pass monitoring.
    const batches = config.update.parallelism === 0 ? 1 : Math.max(1, Math.ceil(config.replicas / config.update.parallelism));
    return 30_000 + batches * (config.update.delayMs + config.update.monitorMs + 60_000);
  }
}
