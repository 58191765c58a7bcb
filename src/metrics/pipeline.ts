import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { TERMINAL_BUILD_STATUSES, type BuildRecord, type BuildStatus, type DeploymentRecord } from '../store/index.js';

/** What the pipeline metrics read: state changes as they happen, and the queued builds at scrape time. */
export interface PipelineSources {
  events: { subscribe(listener: (event: PipelineEvent) => void, o: { queued: boolean }): Promise<() => void> };
  builds: {
    list(q: { status?: BuildStatus; limit: number }): Promise<BuildRecord[]>;
    countByStatus<S extends BuildStatus>(statuses: readonly S[]): Promise<Record<S, number>>;
  };
  clock: () => Date;
}

export type PipelineEvent = { type: 'build'; record: BuildRecord } | { type: 'deployment'; record: DeploymentRecord };

const ENDED = new Set<string>(TERMINAL_BUILD_STATUSES);
const TERMINAL_ROLLOUT = new Set<string>(['succeeded', 'rolled_back', 'failed']);
/** Scrapes look at this many queued builds at most (the API's own list limit). */
const QUEUED_SCAN = 500;
/** Ids remembered to count each build start and end once, though events may repeat. */
const SEEN_LIMIT = 10_000;

const seconds = (from: string | null, to: string | null): number | null => {
  if (!from || !to) return null;
  const s = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(s) && s >= 0 ? s : null;
};

/** A set that forgets its oldest entries beyond `limit`. */
class Seen {
  private readonly ids = new Set<string>();
  constructor(private readonly limit: number) {}
  /** True the first time `id` is seen. */
  first(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}

/**
 * Build and rollout metrics for /metrics (issue 6, "Metrics and health"):
 * - `slipway_lane_depth{repo}` and `slipway_lane_oldest_wait_seconds{repo}`: queued builds per
 *   repository and how long the oldest has waited, read from the build records at scrape time
 *   (the same in every API process);
 * - `slipway_builds_total{outcome}`: builds that ended with each outcome, ever (whether they ran or
 *   not), counted from the per-status indexes at scrape time;
 * - `slipway_build_wait_seconds{repo}`: queued → started, per build;
 * - `slipway_build_duration_seconds{outcome}` (started → finished, builds that ran);
 * - `slipway_rollouts_total{environment,outcome}` and `slipway_rollout_duration_seconds{environment,outcome}`.
 * The histograms and the rollout counter follow the event bus, which every API process receives
 * whole, minus the records of builds that never started (the bulk of a busy intake's events, with
 * nothing to time): each process reports the cluster's totals, so aggregate replicas with max(), not sum().
 */
export async function registerPipelineMetrics(registry: Registry, sources: PipelineSources): Promise<() => void> {
  // One set per registry: a second app on the same registry (tests do that) reuses the first's.
  if (registry.getSingleMetric('slipway_lane_depth')) return () => undefined;
  let pending: Promise<void> | null = null;
  // prom-client calls collect() once per metric: one read of the build records serves both gauges.
  const collect = async () => {
    pending ??= refresh().finally(() => (pending = null));
    await pending;
  };
  const depth = new Gauge({ name: 'slipway_lane_depth', help: 'Builds queued per repository (waiting for a worker)', labelNames: ['repo'], registers: [registry], collect });
  const oldest = new Gauge({ name: 'slipway_lane_oldest_wait_seconds', help: 'How long the oldest queued build of each repository has waited', labelNames: ['repo'], registers: [registry], collect });
  // Rebuilt on each scrape: a repository whose lane emptied drops out instead of lingering at its last value.
  async function refresh(): Promise<void> {
    const [queued, ended] = await Promise.all([sources.builds.list({ status: 'queued', limit: QUEUED_SCAN }), sources.builds.countByStatus(TERMINAL_BUILD_STATUSES)]);
    builds.reset();
    for (const outcome of TERMINAL_BUILD_STATUSES) builds.inc({ outcome }, ended[outcome]);
    const now = sources.clock().getTime();
    const perRepo = new Map<string, { count: number; oldest: number }>();
    for (const b of queued) {
      const at = Date.parse(b.queuedAt);
      const entry = perRepo.get(b.repo) ?? { count: 0, oldest: now };
      entry.count += 1;
      if (Number.isFinite(at)) entry.oldest = Math.min(entry.oldest, at);
      perRepo.set(b.repo, entry);
    }
    depth.reset();
    oldest.reset();
    for (const [repo, e] of perRepo) {
      depth.set({ repo }, e.count);
      oldest.set({ repo }, Math.max(0, (now - e.oldest) / 1000));
    }
  }

  const wait = new Histogram({
    name: 'slipway_build_wait_seconds',
    help: 'Time from queued to started, per build',
    labelNames: ['repo'],
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'slipway_build_duration_seconds',
    help: 'Time from started to finished, per build outcome',
    labelNames: ['outcome'],
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200],
    registers: [registry],
  });
  const builds = new Counter({ name: 'slipway_builds_total', help: 'Finished builds by outcome', labelNames: ['outcome'], registers: [registry], collect });
  const rollouts = new Counter({ name: 'slipway_rollouts_total', help: 'Finished rollouts by environment and outcome', labelNames: ['environment', 'outcome'], registers: [registry] });
  const rolloutDuration = new Histogram({
    name: 'slipway_rollout_duration_seconds',
    help: 'Time from start to outcome, per rollout',
    labelNames: ['environment', 'outcome'],
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300],
    registers: [registry],
  });

  const started = new Seen(SEEN_LIMIT);
  const ended = new Seen(SEEN_LIMIT);
  // Builds that never started have nothing to time: this listener is not sent them.
  return sources.events.subscribe((event) => {
    const r = event.record;
    if (event.type === 'build') {
      const b = r as BuildRecord;
      const w = seconds(b.queuedAt, b.startedAt);
      if (w !== null && started.first(`build:${b.id}`)) wait.observe({ repo: b.repo }, w);
      const d = seconds(b.startedAt, b.finishedAt);
      if (ENDED.has(b.status) && d !== null && ended.first(`build:${b.id}`)) duration.observe({ outcome: b.status }, d);
      return;
    }
    const d = r as DeploymentRecord;
    if (!TERMINAL_ROLLOUT.has(d.status) || !ended.first(`deployment:${d.id}`)) return;
    const labels = { environment: d.environment, outcome: d.status };
    rollouts.inc(labels);
    const s = seconds(d.startedAt, d.finishedAt);
    if (s !== null) rolloutDuration.observe(labels, s);
  }, { queued: false });
}
