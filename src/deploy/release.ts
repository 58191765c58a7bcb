import { isDeepStrictEqual } from 'node:util';
import type { EnvironmentSpec, ServiceSpec } from '../rules/index.js';
import type { DeploymentRecord, ReleaseService } from '../store/records.js';
import type { DeploymentStore } from './store.js';
import { rolloutRequest, takenOn, type RolloutOutcome, type RolloutRequest, type Target } from './target.js';

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
 * Rolls a release of a multi-service environment out as one: its jobs run to completion, then each
 * service updates in order, health-gated as a single-service environment is; when one fails, every
 * service this release already changed is restored to the previous release (a service new in this
 * release is removed) and the release ends `rolled_back`. Every step is saved before the next, and
 * each step is idempotent against Swarm's state, so a worker that takes over a release a dead worker
 * left `running` calls `run()` again and finishes it or completes its undo.
 */
export class ReleaseRollout {
  constructor(private readonly opts: ReleaseRolloutOptions) {}

  async run(start: DeploymentRecord, config: EnvironmentSpec, signal: AbortSignal): Promise<ReleaseResult> {
    const { store } = this.opts;
    const services = config.services ?? [];
    const previous = await store.current(start);
    const previousPlan = previous ? await store.plan(previous.id).catch(() => null) : null;
    let record = start;
    if (!record.phase) {
      // `before` is what runs when the release starts (a release queued behind another sees that one's result).
      record = { ...record, phase: 'rolling_out', services: entriesOf(record).map((e) => ({ ...e, before: previousEntry(previous, e.name)?.digest ?? null })) };
      await this.opts.progress(record);
    }
    let failure: Failure | null = null;
    if (record.phase === 'rolling_out') {
      for (const svc of services) {
        const entry = entryOf(record, svc.name);
        if (entry.status === 'succeeded' || entry.status === 'unchanged') continue;
        const req = rolloutRequest(record, svc.spec, `${entry.image}@${entry.digest}`);
        const before = previous && isDeepStrictEqual(previousPlan?.config.services?.find((s) => s.name === svc.name)?.spec, svc.spec) ? previousEntry(previous, svc.name) : undefined;
        if (svc.role !== 'job' && before?.digest === entry.digest && (await this.runsAlready(svc, req.imageRef))) {
          record = await this.mark(record, svc.name, { status: 'unchanged' });
          continue;
        }
        record = await this.mark(record, svc.name, { status: 'running' });
        const outcome = await this.roll(svc, req, signal);
        if (outcome.status === 'succeeded') {
          record = await this.mark(record, svc.name, { status: 'succeeded' });
          continue;
        }
        // Jobs run first: when one fails nothing of the environment changed yet.
        if (svc.role === 'job') {
          record = await this.mark(record, svc.name, { status: 'failed', error: outcome.reason });
          return { record, outcome: { status: 'failed', reason: `job ${svc.name} failed, so no service was changed: ${outcome.reason}` } };
        }
        // The failure and the turn to undo are saved as one: a restarted worker never retries the failed service.
        record = await this.mark({ ...record, phase: 'rolling_back' }, svc.name, { status: outcome.status, error: outcome.reason });
        failure = { name: svc.name, service: svc.spec.service, reason: outcome.reason };
        break;
      }
      if (!failure) return { record, outcome: { status: 'succeeded' } };
    }
    failure ??= failureOf(record);
    return this.undo(record, services, previous, previousPlan?.config ?? null, failure, signal);
  }

  /** Restores every service this release changed, newest first, to the previous release. */
  private async undo(
    start: DeploymentRecord,
    services: ServiceSpec[],
    previous: DeploymentRecord | null,
    previousConfig: EnvironmentSpec | null,
    failure: Failure,
    signal: AbortSignal,
  ): Promise<ReleaseResult> {
    let record = start;
    const restored: string[] = [];
    const stuck: string[] = [];
    for (const svc of [...services].reverse()) {
      if (svc.role === 'job') continue;
      const entry = entryOf(record, svc.name);
      // The failed service itself: Swarm rolled it back (failure_action rollback), or slipway did at its deadline.
      const changed = entry.status === 'succeeded' || (svc.name === failure.name && entry.status === 'failed');
      if (!changed) continue;
      const before = previousEntry(previous, svc.name);
      const beforeSpec = previousConfig?.services?.find((s) => s.name === svc.name)?.spec;
      if (!before || !beforeSpec || !previous) {
        await this.opts.target.remove(record.repo, svc.spec);
        record = await this.mark(record, svc.name, { status: 'removed' });
        restored.push(`${svc.name} removed (new in this release)`);
        continue;
      }
      const req = { ...rolloutRequest(previous, beforeSpec, `${before.image}@${before.digest}`), since: Date.now() };
      const state = await this.opts.target.state(beforeSpec);
      let outcome: RolloutOutcome = { status: 'succeeded' };
      if (state.deploymentId !== previous.id || state.imageRef !== req.imageRef || state.rolling) outcome = await this.roll(svc, req, signal);
      if (outcome.status === 'succeeded') {
        record = await this.mark(record, svc.name, { status: 'rolled_back', error: svc.name === failure.name ? failure.reason : null });
        restored.push(`${svc.name} to ${before.digest.slice(0, 19)}`);
      } else {
        stuck.push(`${svc.name} (${outcome.reason})`);
      }
    }
    const undone = restored.length > 0 ? `; restored ${restored.join(', ')}` : '; no other service had changed';
    const cause = `service ${failure.name} (${failure.service}) did not become healthy: ${failure.reason}`;
    if (stuck.length > 0) return { record, outcome: { status: 'failed', reason: `${cause}${undone}; could not restore ${stuck.join(', ')}: the environment needs attention` } };
    return { record, outcome: { status: 'rolled_back', reason: `${cause}${undone}` } };
  }

  /** One service's step: a job's run, or an update followed until Swarm settles it (and closes it). */
  private async roll(svc: ServiceSpec, req: RolloutRequest, signal: AbortSignal): Promise<RolloutOutcome> {
    const { target } = this.opts;
    const deadlineAt = Date.now() + this.opts.deadlineMs(req.config);
    try {
      if (svc.role === 'job') return await target.runJob(req, deadlineAt, signal);
      const state = await target.state(req.config);
      // A restarted worker follows what its predecessor applied; apply is idempotent otherwise.
      if (!takenOn(state, req)) await target.apply(req);
      this.opts.log?.info({ deployment: req.deploymentId, service: req.config.service }, 'release: service rolling');
      const outcome = await target.settle(req, deadlineAt, signal);
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

  private async mark(record: DeploymentRecord, name: string, change: Partial<Pick<ReleaseService, 'status' | 'error'>>): Promise<DeploymentRecord> {
    const next = { ...record, services: entriesOf(record).map((e) => (e.name === name ? { ...e, error: null, ...change } : e)) };
    await this.opts.progress(next);
    return next;
  }


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
