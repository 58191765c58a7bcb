import { isDeepStrictEqual } from 'node:util';
import type { EnvironmentSpec, ServiceSpec } from '../rules/index.js';
import type { DeploymentRecord, ReleaseService } from '../store/records.js';
import type { DeploymentStore } from './store.js';
import { rolloutRequest, takenOn, type RolloutOutcome, type RolloutRequest, type SettleOptions, type Target } from './target.js';

export interface ReleaseRolloutOptions {
  store: DeploymentStore;
  target: Target;
  /** Saves and publishes a record whose progress changed. */
  progress: (record: DeploymentRecord) => Promise<void>;
  /** Slipway's deadline for one service's rollout. */
  deadlineMs: (config: EnvironmentSpec) => number;
  log?: { info(obj: object, msg?: string): void };
}

/** The outcome of a release, with the record as it stands at its end (every service's status). */
export interface ReleaseResult {
  record: DeploymentRecord;
  outcome: RolloutOutcome;
}

/** What a failed service said, kept for the release's own error after its undo. */
interface Failure {
  name: string;
  service: string;
  reason: string;
}

/**
 * Rolls a release of a multi-service environment out as one: its jobs run to completion, then every
 * service updates as soon as the services it `depends_on` are healthy (services independent of each
 * other update at the same time, as `docker stack deploy` updates a stack), each health-gated as a
 * single-service environment is. When one fails, no further service starts; every service this
 * release changed is restored to the previous release (dependents before what they depend on, the
 * independent ones at the same time; a service new in this release is removed) and the release ends
 * `rolled_back`. Every step is saved before the next and each step is idempotent against Swarm's
 * state, so a worker that takes over a release a dead worker left `running` calls `run()` again and
 * finishes it or completes its undo.
 */
export class ReleaseRollout {
  constructor(private readonly opts: ReleaseRolloutOptions) {}

  async run(start: DeploymentRecord, config: EnvironmentSpec, signal: AbortSignal): Promise<ReleaseResult> {
    const { store } = this.opts;
    const services = config.services ?? [];
    const previous = await store.current(start);
    const release: Release = { previous, previousConfig: previous ? ((await store.plan(previous.id).catch(() => null))?.config ?? null) : null };
    const progress = new ReleaseProgress(start, this.opts.progress);
    if (!start.phase) {
      // `before` is what runs when the release starts (a release queued behind another sees that one's result).
      await progress.save({ ...start, phase: 'rolling_out', services: entriesOf(start).map((e) => ({ ...e, before: previousEntry(previous, e.name)?.digest ?? null })) });
    }
    let failure: Failure | null = null;
    if (progress.record.phase === 'rolling_out') {
      // Jobs run first, one after another: when one fails nothing of the environment changed yet.
      for (const job of services.filter((s) => s.role === 'job')) {
        if (entryOf(progress.record, job.name).status === 'succeeded') continue;
        await progress.mark(job.name, { status: 'running' });
        const outcome = await this.roll(job, rolloutRequest(progress.record, job.spec, imageRefOf(progress.record, job.name)), signal);
        if (outcome.status !== 'succeeded') {
          await progress.mark(job.name, { status: 'failed', error: outcome.reason });
          return { record: progress.record, outcome: { status: 'failed', reason: `job ${job.name} failed, so no service was changed: ${outcome.reason}` } };
        }
        await progress.mark(job.name, { status: 'succeeded' });
      }
      failure = await this.update(progress, services.filter((s) => s.role !== 'job'), release, signal);
      if (!failure) return { record: progress.record, outcome: { status: 'succeeded' } };
    }
    failure ??= failureOf(progress.record);
    return this.undo(progress, services, release, failure, signal);
  }

  /**
   * Updates the services in `depends_on` order, the independent ones together; the first failure, or
   * null. A failure is known as soon as Swarm starts rolling that service back: the services still
   * rolling stop there (they stay `running`, and the undo restores them) and none starts after it.
   */
  private async update(progress: ReleaseProgress, services: ServiceSpec[], release: Release, signal: AbortSignal): Promise<Failure | null> {
    let failure: Failure | null = null;
    const stop = new AbortController();
    const stepSignal = AbortSignal.any([signal, stop.signal]);
    await inDependencyOrder(services, (svc) => svc.dependsOn, async (svc) => {
      const entry = entryOf(progress.record, svc.name);
      if (entry.status === 'succeeded' || entry.status === 'unchanged') return true;
      if (failure) return false;
      const req = rolloutRequest(progress.record, svc.spec, imageRefOf(progress.record, svc.name));
      const sameSpec = isDeepStrictEqual(release.previousConfig?.services?.find((s) => s.name === svc.name)?.spec, svc.spec);
      if (sameSpec && previousEntry(release.previous, svc.name)?.digest === entry.digest && (await this.runsAlready(svc, req.imageRef))) {
        await progress.mark(svc.name, { status: 'unchanged' });
        return true;
      }
      await progress.mark(svc.name, { status: 'running' });
      const outcome = await this.roll(svc, req, stepSignal, { rollbackStarted: true }).catch((err: unknown) => {
        if (stop.signal.aborted && !signal.aborted) return null;
        throw err;
      });
      if (!outcome) return false;
      if (outcome.status === 'succeeded') {
        await progress.mark(svc.name, { status: 'succeeded' });
        return true;
      }
      const first = !failure;
      failure ??= { name: svc.name, service: svc.spec.service, reason: outcome.reason };
      stop.abort();
      // `failed` until the undo has seen it back on the previous release (Swarm's own rollback may still
      // be under way). The first failure and the turn to undo are saved as one: a restarted worker never
      // retries it.
      await progress.mark(svc.name, { status: 'failed', error: outcome.reason }, first ? 'rolling_back' : undefined);
      return false;
    });
    return failure;
  }

  /** Restores every service this release changed to the previous release, dependents first. */
  private async undo(progress: ReleaseProgress, services: ServiceSpec[], release: Release, failure: Failure, signal: AbortSignal): Promise<ReleaseResult> {
    const { previous, previousConfig } = release;
    const restored = new Map<string, string>();
    const stuck = new Map<string, string>();
    const updated = services.filter((s) => s.role !== 'job');
    const dependents = (svc: ServiceSpec) => updated.filter((s) => s.dependsOn.includes(svc.name)).map((s) => s.name);
    await inDependencyOrder(updated, dependents, async (svc) => {
      // Changed by this release: done, failed (Swarm may still be rolling it back) or stopped half way.
      if (!['succeeded', 'failed', 'running'].includes(entryOf(progress.record, svc.name).status)) return true;
      const before = previousEntry(previous, svc.name);
      const beforeSpec = previousConfig?.services?.find((s) => s.name === svc.name)?.spec;
      if (!before || !beforeSpec || !previous) {
        await this.opts.target.remove(progress.record.repo, svc.spec);
        await progress.mark(svc.name, { status: 'removed' });
        restored.set(svc.name, `${svc.name} removed (new in this release)`);
        return true;
      }
      const req = { ...rolloutRequest(previous, beforeSpec, `${before.image}@${before.digest}`), since: Date.now() };
      const state = await this.opts.target.state(beforeSpec);
      let outcome: RolloutOutcome = { status: 'succeeded' };
      if (state.deploymentId !== previous.id || state.imageRef !== req.imageRef || state.rolling) outcome = await this.roll(svc, req, signal);
      if (outcome.status === 'succeeded') {
        await progress.mark(svc.name, { status: 'rolled_back', error: svc.name === failure.name ? failure.reason : null });
        restored.set(svc.name, `${svc.name} to ${before.digest.slice(0, 19)}`);
      } else {
        stuck.set(svc.name, `${svc.name} (${outcome.reason})`);
      }
      return true;
    });
    // Named in undo order, whichever finished first.
    const inOrder = (done: Map<string, string>) => [...updated].reverse().flatMap((s) => done.get(s.name) ?? []);
    const undone = restored.size > 0 ? `; restored ${inOrder(restored).join(', ')}` : '; no other service had changed';
    const cause = `service ${failure.name} (${failure.service}) did not become healthy: ${failure.reason}`;
    const record = progress.record;
    if (stuck.size > 0) return { record, outcome: { status: 'failed', reason: `${cause}${undone}; could not restore ${inOrder(stuck).join(', ')}: the environment needs attention` } };
    return { record, outcome: { status: 'rolled_back', reason: `${cause}${undone}` } };
  }

  /** One service's step: a job's run, or an update followed until Swarm settles it (and closes it). */
  private async roll(svc: ServiceSpec, req: RolloutRequest, signal: AbortSignal, opts?: SettleOptions): Promise<RolloutOutcome> {
    const { target } = this.opts;
    const deadlineAt = Date.now() + this.opts.deadlineMs(req.config);
    try {
      if (svc.role === 'job') return await target.runJob(req, deadlineAt, signal);
      const state = await target.state(req.config);
      // A restarted worker follows what its predecessor applied; apply is idempotent otherwise.
      if (!takenOn(state, req)) await target.apply(req);
      this.opts.log?.info({ deployment: req.deploymentId, service: req.config.service }, 'release: service rolling');
      const outcome = await target.settle(req, deadlineAt, signal, opts);
      if (outcome.status !== 'succeeded' || !outcome.confirming) return outcome;
      const { update } = req.config;
      return await target.confirm(req, Date.now() + update.delayMs + update.monitorMs + 60_000, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      return { status: 'failed', reason: (err as Error).message };
    }
  }

  private async runsAlready(svc: ServiceSpec, imageRef: string): Promise<boolean> {
    const state = await this.opts.target.state(svc.spec);
    return state.imageRef === imageRef && !state.rolling;
  }
}

/** What the release replaces: the environment's current release and its frozen config. */
interface Release {
  previous: DeploymentRecord | null;
  previousConfig: EnvironmentSpec | null;
}

/**
 * The release's record as its services change. Services rolling at the same time report here, so each
 * change is applied to the latest record and saved before the next one is made: none is lost.
 */
class ReleaseProgress {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    public record: DeploymentRecord,
    private readonly publish: (record: DeploymentRecord) => Promise<void>,
  ) {}

  save(next: DeploymentRecord): Promise<void> {
    return this.then(() => next);
  }

  mark(name: string, change: Partial<Pick<ReleaseService, 'status' | 'error'>>, phase?: DeploymentRecord['phase']): Promise<void> {
    return this.then((r) => ({ ...r, ...(phase ? { phase } : {}), services: entriesOf(r).map((e) => (e.name === name ? { ...e, error: null, ...change } : e)) }));
  }

  private then(change: (record: DeploymentRecord) => DeploymentRecord): Promise<void> {
    const step = this.queue.then(async () => {
      const next = change(this.record);
      await this.publish(next);
      this.record = next;
    });
    this.queue = step.catch(() => undefined);
    return step;
  }
}

/**
 * Runs `step` for every item once the steps of the items it comes after (`after`, by name) are done
 * and returned true; an item after one that returned false is skipped. Waits for every step started,
 * then throws the first error, so nothing runs on once it returns.
 */
async function inDependencyOrder<T extends { name: string }>(items: T[], after: (item: T) => string[], step: (item: T) => Promise<boolean>): Promise<void> {
  const started = new Map<string, Promise<boolean>>();
  const start = (item: T): Promise<boolean> => {
    let done = started.get(item.name);
    if (!done) {
      const before = items.filter((other) => after(item).includes(other.name));
      done = Promise.all(before.map(start)).then((ok) => (ok.every(Boolean) ? step(item) : false));
      started.set(item.name, done);
    }
    return done;
  };
  const results = await Promise.allSettled(items.map(start));
  const error = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (error) throw error.reason;
}

function imageRefOf(record: DeploymentRecord, name: string): string {
  const entry = entryOf(record, name);
  return `${entry.image}@${entry.digest}`;
}

function entriesOf(record: DeploymentRecord): ReleaseService[] {
  if (!record.services) throw new Error(`deployment ${record.id} is not a release of services`);
  return record.services;
}

function entryOf(record: DeploymentRecord, name: string): ReleaseService {
  const entry = entriesOf(record).find((e) => e.name === name);
  if (!entry) throw new Error(`release ${record.id} has no service ${name}`);
  return entry;
}

function previousEntry(previous: DeploymentRecord | null, name: string): ReleaseService | undefined {
  return previous?.services?.find((e) => e.name === name);
}

/** The failure a release in `rolling_back` recorded (a restarted worker resumes its undo). */
function failureOf(record: DeploymentRecord): Failure {
  const failed = entriesOf(record).find((e) => (e.status === 'failed' || e.status === 'rolled_back') && e.error);
  return { name: failed?.name ?? 'unknown', service: failed?.service ?? 'unknown', reason: failed?.error ?? 'the release was being rolled back when its worker stopped' };
}
