import type { BuildRecord, DeploymentRecord } from '../store/index.js';

/** What the lifecycle needs of src/deploy's Deployer. */
export interface AutoDeployer {
  /** Requests a succeeded build's rollouts, each at most once however often it is asked; answers the new deployment ids. */
  onBuildSucceeded(build: BuildRecord): Promise<string[]>;
  /** A deployment id, `refused: …`, `lease` while one is being requested, or null: never requested. */
  autoDeployOf(buildId: string, environment: string): Promise<string | null>;
  latest(key: { repo: string; environment: string }): Promise<DeploymentRecord | null>;
}

export interface LifecycleOptions {
  deployer: AutoDeployer;
  builds: {
    list(q: { status: 'succeeded'; limit: number }): Promise<BuildRecord[]>;
    addDeployment(id: string, deploymentId: string): Promise<boolean>;
  };
  /** Announces a build's new state (the event bus: dashboards, GitHub feedback). */
  publish: (record: BuildRecord) => void;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  clock?: () => Date;
  /** A succeeded build whose auto-deploy was never requested is requested while it is younger than this (default 1 h). */
  recoverWithinMs?: number;
  /** How often the reconciler looks (default 30 s). */
  reconcileEveryMs?: number;
}

/** Succeeded builds the reconciler reads per pass, newest first. */
const RECONCILE_SCAN = 200;

/**
 * What happens when a build ends: its new state is announced, and a succeeded build is rolled out
 * to the environments its rules name. Requests are made when the build ends, in this process; the
 * reconciler (at start, then on a timer) finds succeeded builds whose auto-deploy was never
 * requested, because the worker that ran them died first or the request failed, and requests it.
 * It only takes the newest succeeded build of each repository and environment, and only when
 * nobody deployed that environment after the build ended: a recovered rollout never replaces a
 * newer one.
 */
export class Lifecycle {
  private readonly clock: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> | undefined;

  constructor(private readonly o: LifecycleOptions) {
    this.clock = o.clock ?? (() => new Date());
  }

  /** A build's state changed (the lanes recorded it). */
  buildChanged(record: BuildRecord): void {
    this.o.publish(record);
    if (record.status !== 'succeeded') return;
    this.requestRollouts(record).catch((err: Error) =>
      this.o.log.error({ err: err.message, build: record.id }, 'auto-deploy not queued: the reconciler asks again'),
    );
  }

  /** One reconciler pass; answers the deployments it requested. */
  async reconcile(): Promise<string[]> {
    const since = this.clock().getTime() - (this.o.recoverWithinMs ?? 3_600_000);
    const newest = new Set<string>();
    const requested: string[] = [];
    for (const build of await this.o.builds.list({ status: 'succeeded', limit: RECONCILE_SCAN })) {
      const young = build.finishedAt !== null && Date.parse(build.finishedAt) >= since;
      for (const environment of build.deploy) {
        const key = `${build.repo.toLowerCase()} ${environment}`;
        if (newest.has(key)) continue;
        newest.add(key);
        const state = await this.o.deployer.autoDeployOf(build.id, environment);
        if (state?.startsWith('dep_') && !build.deployments.includes(state)) await this.o.builds.addDeployment(build.id, state);
        if (state !== null || !young) continue;
        const latest = await this.o.deployer.latest({ repo: build.repo, environment });
        if (latest && (latest.requestedAt ?? latest.startedAt ?? '') > build.finishedAt!) continue;
        const ids = await this.requestRollouts({ ...build, deploy: [environment] }).catch((err: Error) => {
          this.o.log.warn({ err: err.message, build: build.id, environment }, 'auto-deploy still not requested: asked again on the next pass');
          return [];
        });
        if (ids.length > 0) this.o.log.warn({ build: build.id, environment, deployments: ids }, `auto-deploy of build ${build.id} to ${environment} was never requested: requested now`);
        requested.push(...ids);
      }
    }
    return requested;
  }

  /** Reconciles once, then every `reconcileEveryMs`. */
  async start(): Promise<void> {
    await this.safePass();
    this.timer = setInterval(() => void this.safePass(), this.o.reconcileEveryMs ?? 30_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pass;
  }

  private async requestRollouts(build: BuildRecord): Promise<string[]> {
    const ids = await this.o.deployer.onBuildSucceeded(build);
    await Promise.all(ids.map((id) => this.o.builds.addDeployment(build.id, id)));
    return ids;
  }

  private safePass(): Promise<unknown> {
    this.pass ??= this.reconcile()
      .catch((err: Error) => this.o.log.warn({ err: err.message }, 'auto-deploy reconciler pass failed'))
      .finally(() => (this.pass = undefined));
    return this.pass;
  }
}
