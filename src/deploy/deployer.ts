import type { AuditEntry, BuildRecord, DeploymentRecord, ReleaseService } from '../store/records.js';
import { roleAtLeast, type Role } from '../store/index.js';
import type { EnvironmentSpec, ServiceSpec } from '../rules/index.js';
import { readRepoConfig, type StoredRepoConfig } from './environment.js';
import { DeployError } from './errors.js';
import type { DeploymentStore, EnvKey } from './store.js';
import type { Target, TaskView } from './target.js';


/** Who asks: a token's name and role; automatic rollouts act as `slipway`. */
export interface Actor {
  name: string;
  role: Role;
}

/** Stored repository configs; the deployer reads them through the rules engine. */
export interface RepoConfigSource {
  /** `repo` in the answer is the repository's canonical owner/name (lookups may ignore case); `config` the stored document. */
  get(repo: string): Promise<{ repo?: string; config: unknown } | null>;
}

export interface BuildSource {
  get(id: string): Promise<BuildRecord | null>;
  /** Newest first; a release reads it for the newest image of a service its trigger does not feed. */
  list?(query: { repo: string; status: 'succeeded'; limit: number }): Promise<BuildRecord[]>;
}

/** An image a release gives a service. */
interface ServiceImage {
  image: string;
  digest: string;
  build: string | null;
}

export interface AuditSink {
  append(entry: AuditEntry): Promise<unknown>;
}

/** Deployment state changes, published on the intake's event bus. */
export interface DeploymentEvents {
  publish(event: { type: 'deployment'; record: DeploymentRecord }): Promise<unknown> | void;
}

export interface DeployerOptions {
  store: DeploymentStore;
  configs: RepoConfigSource;
  builds?: BuildSource;
  audit?: AuditSink;
  events?: DeploymentEvents;
  clock?: () => Date;
  /** Where rollouts land: read for the live tasks of a rollout in progress, and to remove an environment (left out: neither). */
  target?: Pick<Target, 'tasks' | 'remove'>;
  log?: { warn(obj: object, msg?: string): void };
}

/**
 * A deployment as `GET /api/deployments/{id}` answers it: the record, plus while it is in progress its
 * service's tasks (a release: the tasks of each service that is rolling, on its entry).
 */
export type DeploymentView = Omit<DeploymentRecord, 'services'> & { tasks?: TaskView[]; services?: (ReleaseService & { tasks?: TaskView[] })[] };

/** A service of a multi-service environment as configured. */
export interface ServiceView {
  name: string;
  service: string;
  role: ServiceSpec['role'];
  /** `build: <rule>` or the pinned `image@digest`. */
  source: string;
  replicas: number;
  ports: string[];
  dependsOn: string[];
}

export interface EnvironmentView {
  name: string;
  service: string;
  /** Present for an application of several services, in rollout order. */
  services?: ServiceView[];
  current: DeploymentRecord | null;
  history: DeploymentRecord[];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** How long one requester holds a build's auto-deploy before another may request it (it takes milliseconds). */
const AUTO_DEPLOY_LEASE_MS = 60_000;
export const SYSTEM_ACTOR: Actor = { name: 'slipway', role: 'admin' };

/**
 * Accepts rollout requests (deploy, promote, rollback, auto-deploy after a build) and queues them per
 * environment; a DeployWorker runs them. Every request is checked whole before anything is written.
 */
export class Deployer {
  private readonly store: DeploymentStore;
  private readonly clock: () => Date;

  constructor(private readonly opts: DeployerOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? (() => new Date());
  }

  async environments(repo: string): Promise<EnvironmentView[]> {
    const { repo: canonical, environments } = await this.loadRepo(repo);
    return Promise.all(Object.keys(environments).map((name) => this.environment(canonical, name)));
  }

  async environment(repo: string, environment: string): Promise<EnvironmentView> {
    const { repo: canonical, config } = await this.loadEnvironment(repo, environment);
    const key = { repo: canonical, environment };
    const [current, history] = await Promise.all([this.store.current(key), this.store.history(key)]);
    const view: EnvironmentView = { name: environment, service: config.service, current, history };
    if (config.services) view.services = config.services.map(serviceView);
    return view;
  }

  async deployment(id: string): Promise<DeploymentView> {
    const record = await this.store.get(id);
    if (!record) throw new DeployError(404, 'deployment_not_found', `no deployment ${id}`);
    if (!this.opts.target || (record.status !== 'pending' && record.status !== 'running')) return record;
    // Read live from the orchestrator; the record is the answer, so a failure here only leaves the tasks out.
    try {
      const { config } = await this.loadEnvironment(record.repo, record.environment);
      if (record.services) {
        const target = this.opts.target;
        const services = await Promise.all(
          record.services.map(async (e) => {
            const spec = config.services?.find((s) => s.name === e.name)?.spec;
            return e.status === 'running' && spec ? { ...e, tasks: await target.tasks(spec) } : e;
          }),
        );
        return { ...record, services };
      }
      return { ...record, tasks: await this.opts.target.tasks(config) };
    } catch (err) {
      this.opts.log?.warn({ err: (err as Error).message, deployment: id }, 'tasks of a rollout not read');
      return record;
    }
  }

  /** `POST …/environments/{env}/deploy` with `{build}` or `{digest}`. */
  async deploy(name: string, environment: string, body: { build?: string; digest?: string }, actor: Actor): Promise<DeploymentRecord> {
    const { repo, image, config } = await this.loadEnvironment(name, environment);
    this.authorise(actor, environment, config, 'developer');
    if ((body.build === undefined) === (body.digest === undefined)) {
      throw new DeployError(400, 'invalid_request', 'give either "build" (a build id) or "digest" (sha256:<hex>)', [
        { path: 'build', message: 'exactly one of build or digest is required' },
      ]);
    }
    let digest: string;
    let build: string | null = null;
    let fromImage = image;
    if (body.build !== undefined) {
      const record = await this.opts.builds?.get(body.build);
      if (!record || record.repo.toLowerCase() !== repo.toLowerCase()) throw new DeployError(404, 'build_not_found', `no build ${body.build} of ${repo}`);
      if (record.status !== 'succeeded' || !record.digest) {
        throw new DeployError(409, 'build_not_deployable', `build ${record.id} is ${record.status}; only a succeeded build with a pushed digest can be deployed`);
      }
      if (config.services) {
        const fed = fedBy(config, record);
        if (fed.size === 0) {
          throw new DeployError(409, 'build_feeds_no_service', `build ${record.id} (rules ${record.rules.join(', ')}) is the image of no service of ${environment}; its services are built by ${describeSources(config)}`);
        }
        const services = await this.releaseServices({ repo, environment }, config, fed);
        return this.request({ repo, environment }, config, { services, trigger: 'manual', actor, action: 'environment.deploy' });
      }
      digest = record.digest;
      build = record.id;
      fromImage = record.image;
    } else {
      if (config.services) {
        throw new DeployError(400, 'digest_needs_service', `${environment} runs several services (${config.services.map((s) => s.name).join(', ')}): a digest alone names none of them; deploy a build of this repository, or promote`, [
          { path: 'digest', message: 'not accepted for an environment of services; give "build"' },
        ]);
      }
      digest = body.digest!;
      if (!DIGEST.test(digest)) {
        throw new DeployError(400, 'invalid_digest', `digest must be sha256:<64 hex>, got ${JSON.stringify(digest)}`, [
          { path: 'digest', message: 'must be sha256:<64 lower-case hex digits>' },
        ]);
      }
    }
    return this.request({ repo, environment }, config, { services: single(digest, fromImage, build), trigger: 'manual', actor, action: 'environment.deploy' });
  }

  /**
   * `POST …/environments/{env}/promote`: rolls out exactly the digest the `promote_from` environment's
   * current revision runs. `started: false` when that digest already runs (or is already queued) here.
   */
  async promote(name: string, environment: string, actor: Actor): Promise<{ started: boolean; deployment: DeploymentRecord }> {
    const { repo, config } = await this.loadEnvironment(name, environment);
    this.authorise(actor, environment, config, 'developer');
    const from = config.promoteFrom;
    if (!from) throw new DeployError(409, 'no_promote_from', `environment ${environment} has no promote_from; deploy to it by build or digest instead`);
    return this.store.withRequestMutex(this.store.envKey({ repo, environment }), async () => {
      const sourceKey = { repo, environment: from };
      const [source, sourceBusy] = await Promise.all([this.store.current(sourceKey), this.busy(sourceKey)]);
      if (sourceBusy) {
        throw new DeployError(409, 'source_rolling', `${from} is mid-rollout (revision ${sourceBusy.revision}, ${sourceBusy.status}); promote once it has settled`);
      }
      if (!source) throw new DeployError(409, 'source_empty', `${from} has no succeeded revision to promote`);
      const key = { repo, environment };
      const services = config.services ? await this.releaseServices(key, config, this.copied(source, config, `${from}'s release ${source.revision}`)) : single(source.digest, source.image, source.build);
      const waiting = await this.busy(key);
      const current = await this.store.current(key);
      const already = waiting && sameImages(waiting, services) ? waiting : !waiting && current && sameImages(current, services) ? current : null;
      if (already) {
        await this.audit({ actor: actor.name, action: 'environment.promote', ...key, from: current?.digest ?? null, to: source.digest, result: `no-op: ${environment} already ${already.status === 'succeeded' ? 'runs' : 'is rolling out'} ${source.digest} (${already.id})` });
        return { started: false, deployment: already };
      }
      const deployment = await this.request(key, config, {
        services,
        trigger: 'promote',
        actor,
        action: 'environment.promote',
      });
      return { started: true, deployment };
    });
  }

  /** `POST …/environments/{env}/rollback`: re-applies an earlier succeeded revision (default: the one before the current). */
  async rollback(name: string, environment: string, body: { revision?: number }, actor: Actor): Promise<DeploymentRecord> {
    const { repo, config } = await this.loadEnvironment(name, environment);
    this.authorise(actor, environment, config, 'developer');
    if (body.revision !== undefined && (!Number.isInteger(body.revision) || body.revision < 1)) {
      throw new DeployError(400, 'invalid_revision', 'revision must be a positive integer', [{ path: 'revision', message: 'must be a positive integer' }]);
    }
    const key = { repo, environment };
    const current = await this.store.current(key);
    const history = await this.store.history(key, 1000);
    let target: DeploymentRecord | undefined;
    if (body.revision !== undefined) {
      target = history.find((r) => r.revision === body.revision);
      if (!target) throw new DeployError(404, 'revision_not_found', `${environment} has no revision ${body.revision}`);
      if (target.status !== 'succeeded') {
        throw new DeployError(409, 'revision_not_good', `revision ${target.revision} ended ${target.status}; only a succeeded revision can be rolled back to`);
      }
    } else {
      if (!current) throw new DeployError(409, 'nothing_to_roll_back', `${environment} has no succeeded revision yet`);
      target = history.find((r) => r.status === 'succeeded' && r.revision < current.revision && !sameImages(current, imagesOf(r)));
      if (!target) throw new DeployError(409, 'no_previous_revision', `${environment} has no earlier succeeded revision with a different image than revision ${current.revision}`);
    }
    const services = config.services ? await this.releaseServices(key, config, this.copied(target, config, `revision ${target.revision}`)) : single(target.digest, target.image, target.build);
    return this.request(key, config, { services, trigger: 'rollback', actor, action: 'environment.rollback' });
  }

  /**
   * Queues a succeeded build's rollout to every environment its rules name (`deploy: staging`), each
   * exactly once however often it is asked (src/pipeline asks when the build ends and its reconciler
   * asks again for any it finds unrequested). Returns the new deployment ids (for the build record's
   * `deployments`). A protected environment is never deployed automatically (its config is
   * editable by developers): that refusal is recorded and audited once.
   */
  async onBuildSucceeded(build: BuildRecord): Promise<string[]> {
    if (build.status !== 'succeeded' || !build.digest || build.deploy.length === 0) return [];
    const { repo, environments: envs } = await this.loadRepo(build.repo);
    const ids: string[] = [];
    for (const environment of build.deploy) {
      const config = envs[environment];
      if (!config) continue;
      const key = { repo, environment };
      if (!(await this.store.leaseAutoDeploy(build.id, environment, AUTO_DEPLOY_LEASE_MS))) continue;
      if (config.protected) {
        const why = `${environment} is protected; auto-deploy needs a person with the deployer role`;
        await this.store.refuseAutoDeploy(build.id, environment, why);
        await this.audit({ actor: SYSTEM_ACTOR.name, action: 'environment.deploy', ...key, from: null, to: build.digest, result: `refused: ${why}` });
        continue;
      }
      let services: ReleaseService[];
      try {
        services = config.services ? await this.releaseServices(key, config, fedBy(config, build)) : single(build.digest, build.image, build.id);
        if (config.services && !services.some((s) => s.build === build.id)) throw new DeployError(409, 'build_feeds_no_service', `build ${build.id} is the image of no service of ${environment}`);
      } catch (err) {
        if (!(err instanceof DeployError)) throw err;
        await this.store.refuseAutoDeploy(build.id, environment, err.message);
        await this.audit({ actor: SYSTEM_ACTOR.name, action: 'environment.deploy', ...key, from: null, to: build.digest, result: `refused: ${err.message}` });
        continue;
      }
      const record = await this.request(key, config, {
        services,
        trigger: 'build',
        actor: SYSTEM_ACTOR,
        action: 'environment.deploy',
      });
      ids.push(record.id);
    }
    return ids;
  }

  /**
   * `DELETE …/environments/{env}` (admin): removes what the environment runs (every service, its proxy,
   * configs and network; only objects labelled as this repository's and environment's), and forgets its
   * current release, so the next rollout starts it afresh. The config still lists the environment.
   */
  async remove(name: string, environment: string, actor: Actor): Promise<{ removed: string[] }> {
    const { repo, config } = await this.loadEnvironment(name, environment);
    if (!roleAtLeast(actor.role, 'admin')) throw new DeployError(403, 'forbidden', `removing ${environment} needs the admin role; ${actor.name} is ${actor.role}`);
    if (!this.opts.target) throw new DeployError(503, 'no_target', 'this process has no orchestrator to remove the environment from');
    const target = this.opts.target;
    const key = { repo, environment };
    return this.store.withRequestMutex(this.store.envKey(key), async () => {
      const busy = await this.busy(key);
      if (busy) throw new DeployError(409, 'environment_rolling', `${environment} is mid-rollout (revision ${busy.revision}, ${busy.status}); remove it once that has settled`);
      const current = await this.store.current(key);
      const removed = config.services ? config.services.map((s) => s.spec.service) : [config.service];
      await target.remove(repo, config);
      await this.store.forgetCurrent(key);
      await this.audit({
        actor: actor.name,
        action: 'environment.remove',
        ...key,
        from: current?.digest ?? null,
        to: null,
        result: `removed ${removed.join(', ')}`,
        ...(current?.services ? { changes: current.services.map((e) => `${e.name}: ${e.digest} → none`) } : {}),
      });
      return { removed };
    });
  }

  /** What became of a build's auto-deploy to an environment (see DeploymentStore.autoDeployOf). */
  autoDeployOf(buildId: string, environment: string): Promise<string | null> {
    return this.store.autoDeployOf(buildId, environment);
  }

  /** The environment's newest deployment request, whatever its state. */
  async latest(key: EnvKey): Promise<DeploymentRecord | null> {
    return (await this.store.history(key, 1))[0] ?? null;
  }

  /**
   * Queues a rollout. `services` is what it runs: one nameless entry for a single-service environment,
   * else every service of the release (the record's top-level image is then its primary service's).
   */
  private async request(
    key: EnvKey,
    config: EnvironmentSpec,
    r: { services: ReleaseService[]; trigger: DeploymentRecord['trigger']; actor: Actor; action: string },
  ): Promise<DeploymentRecord> {
    const revision = await this.store.nextRevision(key);
    const primary = config.services ? primaryOf(r.services) : r.services[0]!;
    const record: DeploymentRecord = {
      id: this.store.newId(),
      repo: key.repo,
      environment: key.environment,
      revision,
      digest: primary.digest,
      image: primary.image,
      build: primary.build,
      ...(config.services ? { services: r.services } : {}),
      trigger: r.trigger,
      by: r.actor.name,
      status: 'pending',
      requestedAt: this.clock().toISOString(),
      startedAt: null,
      finishedAt: null,
      error: null,
    };
    const replaced = await this.store.enqueue(record, { config });
    if (replaced) await this.markReplaced(replaced, record);
    const current = await this.store.current(key);
    await this.audit({
      actor: r.actor.name,
      action: r.action,
      ...key,
      from: current?.digest ?? null,
      to: record.digest,
      result: `queued ${record.id} (revision ${revision})`,
      ...(record.services ? { changes: record.services.map((e) => `${e.name}: ${current?.services?.find((c) => c.name === e.name)?.digest ?? 'none'} → ${e.digest}`) } : {}),
    });
    this.publish(record);
    return record;
  }

  /**
   * Every service's image for a release: what `given` names (the trigger's build, the promoted or
   * restored release), else a pinned image's digest, else what the environment runs now, else the
   * newest succeeded build of the service's rule. A service with none of these refuses the release.
   */
  private async releaseServices(key: EnvKey, config: EnvironmentSpec, given: Map<string, ServiceImage>): Promise<ReleaseService[]> {
    const current = await this.store.current(key);
    const latest = new Map<string, ServiceImage | null>();
    const out: ReleaseService[] = [];
    for (const svc of config.services ?? []) {
      let image = given.get(svc.name) ?? null;
      if (!image && 'digest' in svc.source) image = { image: svc.source.image, digest: svc.source.digest, build: null };
      const running = current?.services?.find((e) => e.name === svc.name);
      if (!image && running) image = { image: running.image, digest: running.digest, build: running.build };
      if (!image && 'rule' in svc.source) {
        const rule = svc.source.rule;
        if (!latest.has(rule)) latest.set(rule, await this.newestBuild(key.repo, rule));
        image = latest.get(rule) ?? null;
        if (!image) {
          throw new DeployError(409, 'service_without_image', `service ${svc.name} of ${key.environment} has no image yet: no build of rule ${rule} has succeeded; build it first (slipway build ${key.repo} --rule ${rule})`);
        }
      }
      out.push({ name: svc.name, service: svc.spec.service, role: svc.role, image: image!.image, digest: image!.digest, build: image!.build, before: null, status: 'pending', error: null });
    }
    return out;
  }

  private async newestBuild(repo: string, rule: string): Promise<ServiceImage | null> {
    const builds = (await this.opts.builds?.list?.({ repo, status: 'succeeded', limit: 200 })) ?? [];
    const found = builds.find((b) => b.rules.includes(rule) && b.digest);
    return found ? { image: found.image, digest: found.digest!, build: found.id } : null;
  }

  /** The images of `release` for the services of `config`; every one of them must be in it. */
  private copied(release: DeploymentRecord, config: EnvironmentSpec, what: string): Map<string, ServiceImage> {
    const names = (config.services ?? []).map((s) => s.name);
    const missing = names.filter((n) => !release.services?.some((e) => e.name === n));
    if (missing.length > 0) {
      throw new DeployError(409, 'release_lacks_service', `${what} has no ${missing.join(', ')} (it runs ${release.services?.map((e) => e.name).join(', ') || 'a single service'}); deploy a build instead`);
    }
    return new Map(release.services!.filter((e) => names.includes(e.name)).map((e) => [e.name, { image: e.image, digest: e.digest, build: e.build }]));
  }

  /** A queued request that a newer one replaced before it started ends `failed`, naming its successor. */
  private async markReplaced(id: string, by: DeploymentRecord): Promise<void> {
    const old = await this.store.get(id);
    if (!old || old.status !== 'pending') return;
    const now = this.clock().toISOString();
    const ended: DeploymentRecord = { ...old, status: 'failed', finishedAt: now, error: `superseded: replaced by ${by.id} (revision ${by.revision}) before it started` };
    await this.store.finish(ended);
    this.publish(ended);
  }

  /** The environment's queued or running rollout, if any. */
  private async busy(key: EnvKey): Promise<DeploymentRecord | null> {
    const pending = await this.store.pendingId(key);
    if (pending) {
      const r = await this.store.get(pending);
      if (r?.status === 'pending') return r;
    }
    for (const id of await this.store.activeIds()) {
      const r = await this.store.get(id);
      if (r && r.repo === key.repo && r.environment === key.environment && (r.status === 'running' || r.status === 'pending')) return r;
    }
    return null;
  }

  private authorise(actor: Actor, environment: string, config: EnvironmentSpec, base: Role): void {
    const needed: Role = config.protected ? 'deployer' : base;
    if (!roleAtLeast(actor.role, needed)) {
      throw new DeployError(403, 'forbidden', `${environment} is ${config.protected ? 'protected: it needs' : 'open to'} the ${needed} role; ${actor.name} is ${actor.role}`);
    }
  }

  private async loadRepo(name: string): Promise<StoredRepoConfig> {
    const stored = await this.opts.configs.get(name);
    if (!stored) throw new DeployError(404, 'repo_not_found', `no repository ${name} is configured`);
    return readRepoConfig(stored.repo ?? name, stored.config);
  }

  private async loadEnvironment(name: string, environment: string): Promise<{ repo: string; image: string; config: EnvironmentSpec }> {
    const { repo, image, environments } = await this.loadRepo(name);
    const config = environments[environment];
    if (!config) throw new DeployError(404, 'environment_not_found', `${repo} has no environment ${environment}`);
    return { repo, image, config };
  }

  private publish(record: DeploymentRecord): void {
    void Promise.resolve(this.opts.events?.publish({ type: 'deployment', record })).catch(() => undefined);
  }

  private async audit(entry: Omit<AuditEntry, 'at'>): Promise<void> {
    await this.opts.audit?.append({ at: this.clock().toISOString(), ...entry });
  }
}

/** The one entry a single-service rollout runs. */
function single(digest: string, image: string, build: string | null): ReleaseService[] {
  return [{ name: '', service: '', role: 'web', image, digest, build, before: null, status: 'pending', error: null }];
}

/** The services of `config` whose rule built `build`, with its image. */
function fedBy(config: EnvironmentSpec, build: BuildRecord): Map<string, ServiceImage> {
  const out = new Map<string, ServiceImage>();
  for (const svc of config.services ?? []) {
    if ('rule' in svc.source && build.rules.includes(svc.source.rule)) out.set(svc.name, { image: build.image, digest: build.digest!, build: build.id });
  }
  return out;
}

function describeSources(config: EnvironmentSpec): string {
  const rules = [...new Set((config.services ?? []).flatMap((s) => ('rule' in s.source ? [s.source.rule] : [])))];
  return rules.length > 0 ? `rule ${rules.join(', ')}` : 'no rule (every image is pinned)';
}

/** The release's face: its first web service, else its first service that is not a job. */
function primaryOf(services: ReleaseService[]): ReleaseService {
  return services.find((s) => s.role === 'web') ?? services.find((s) => s.role !== 'job') ?? services[0]!;
}

/** What a record runs, as release entries (a single-service record: one nameless entry). */
function imagesOf(record: DeploymentRecord): ReleaseService[] {
  return record.services ?? single(record.digest, record.image, record.build);
}

/** Whether `record` runs exactly these images (by service name and digest). */
function sameImages(record: DeploymentRecord, services: ReleaseService[]): boolean {
  const running = imagesOf(record);
  return running.length === services.length && services.every((s) => running.some((r) => r.name === s.name && r.digest === s.digest));
}

function serviceView(s: ServiceSpec): ServiceView {
  return {
    name: s.name,
    service: s.spec.service,
    role: s.role,
    source: 'rule' in s.source ? `build: ${s.source.rule}` : `${s.source.image}@${s.source.digest}`,
    replicas: s.spec.replicas,
    ports: s.spec.ports.map((p) => `${p.published}:${p.target}${p.protocol === 'udp' ? '/udp' : ''}`),
    dependsOn: s.dependsOn,
  };
}
