import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { EnvironmentSpec } from '../rules/index.js';
import { healthCheck, proxiedPorts } from './environment.js';
import { DeployError } from './errors.js';
import { renderProxyConfig } from './proxy-config.js';
import { ensureProxyImage, type ProxyImageOptions } from './proxy-image.js';
import type { RolloutOutcome, RolloutRequest, RunningState, SettleOptions, Target, TaskView } from './target.js';

export const LABEL_KIND = 'io.slipway.kind';
export const LABEL_REPO = 'io.slipway.repo';
export const LABEL_ENV = 'io.slipway.environment';
export const LABEL_DEPLOYMENT = 'io.slipway.deployment';
const LABEL_ROLE = 'io.slipway.role';

const NS = 1_000_000; // Engine API durations are nanoseconds
const CLOCK_SKEW_MS = 5000;

export interface SwarmTargetOptions {
  docker: Docker;
  proxyImage?: ProxyImageOptions;
  /** How often a rollout is polled. */
  pollMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

type Task = {
  ID: string;
  ServiceID: string;
  Slot?: number;
  DesiredState: string;
  Status?: { State?: string; Err?: string; Message?: string; Timestamp?: string };
  Spec?: { ContainerSpec?: { Image?: string } };
};

/**
 * Rolls an environment's Swarm service to a digest. The service sits on its own attachable overlay network;
 * with `endpoint: proxy` it runs in dnsrr mode behind an HAProxy service slipway owns (published mode=host),
 * with `endpoint: mesh` it publishes its ports through Swarm's routing mesh.
 */
export class SwarmTarget implements Target {
  private readonly docker: Docker;
  private readonly pollMs: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Built (or found) once per process. */
  private proxyImage: Promise<string> | null = null;

  constructor(private readonly opts: SwarmTargetOptions) {
    this.docker = opts.docker;
    this.pollMs = opts.pollMs ?? 100;
    this.sleep = opts.sleep ?? defaultSleep;
  }

  async apply(req: RolloutRequest): Promise<void> {
    const { config } = req;
    const network = await this.ensureNetwork(req);
    const spec = serviceSpec(req, network);
    const existing = await this.inspect(config.service);
    if (!existing) {
      await this.docker.createService(spec as Docker.CreateServiceOptions);
    } else {
      this.assertOwned(existing, req.repo, req.environment);
      await this.docker.getService(existing.ID).update({ _query: { version: existing.Version?.Index }, _body: spec });
    }
    if (config.endpoint === 'proxy' && proxiedPorts(config).length > 0) await this.ensureProxy(req, network);
    else await this.removeProxy(config);
  }

  async settle(req: RolloutRequest, deadlineAt: number, signal?: AbortSignal, opts: SettleOptions = {}): Promise<RolloutOutcome> {
    const { service } = req.config;
    let rollbackRequested = false;
    let swarmReason: string | null = null;
    let convergedSince: number | null = null;
    for (;;) {
      signal?.throwIfAborted();
      const svc = await this.inspect(service);
      if (!svc) return { status: 'failed', reason: `service ${service} disappeared during the rollout` };
      const ours = svc.Spec?.Labels?.[LABEL_DEPLOYMENT] === req.deploymentId;
      const state = svc.UpdateStatus?.State;
      const message = svc.UpdateStatus?.Message ?? '';
      if (state === 'rollback_started' && message && !rollbackRequested) swarmReason = message;

      // Swarm's rollback restores the previous spec (and drops PreviousSpec): a rollback that started
      // after this rollout began is this rollout's, since an environment runs one rollout at a time.
      const rollingBack = state === 'rollback_started' || state === 'rollback_completed' || state === 'rollback_paused';
      const startedAt = Date.parse(svc.UpdateStatus?.StartedAt ?? '') || 0;
      if (!ours && !(rollingBack && startedAt >= req.since - CLOCK_SKEW_MS)) {
        return { status: 'failed', reason: `service ${service} was changed by someone else during the rollout` };
      }
      if (rollingBack && !ours && !rollbackRequested && opts.rollbackStarted) {
        return { status: 'rolled_back', reason: `${swarmReason ?? (message || 'rolled back by Swarm')}${await this.taskFailure(svc.ID, req.imageRef)}` };
      }
      if (ours && state === 'rollback_completed') {
        // Swarm rolled a later rollout back to this one's spec (a release restoring a service follows it).
        if (await this.converged(svc.ID, req.imageRef, req.config.replicas)) return { status: 'succeeded' };
      } else if (ours && state === 'rollback_started') {
        if (Date.now() > deadlineAt) return { status: 'failed', reason: 'Swarm\'s rollback to this spec did not finish before slipway\'s deadline' };
      } else if (ours && (state === undefined || state === 'completed')) {
        // No update status: a new service, or a spec change that needed no task change.
        if (await this.converged(svc.ID, req.imageRef, req.config.replicas)) return { status: 'succeeded' };
      } else if (ours && state === 'updating' && !rollbackRequested) {
        // Converged and healthy for the monitor window: what `docker service update` waits for. Swarm keeps
        // the update open for one more `delay`; the worker follows that tail with confirm().
        if (await this.converged(svc.ID, req.imageRef, req.config.replicas)) {
          convergedSince ??= Date.now();
          if (Date.now() - convergedSince >= req.config.update.monitorMs) return { status: 'succeeded', confirming: true };
        } else {
          convergedSince = null;
        }
      } else if (ours && state === 'paused') {
        return { status: 'failed', reason: `rollout paused by Swarm: ${message}${await this.taskFailure(svc.ID, req.imageRef)}` };
      } else if (state === 'rollback_completed' || state === 'rollback_paused') {
        const why = await this.taskFailure(svc.ID, req.imageRef);
        if (rollbackRequested) {
          return { status: 'failed', reason: `rollout did not finish before slipway's deadline; slipway rolled the service back${why}` };
        }
        const base = swarmReason ?? message ?? 'rolled back by Swarm';
        const paused = state === 'rollback_paused' ? ' (the rollback itself paused: the service needs attention)' : '';
        return { status: 'rolled_back', reason: `${base}${why}${paused}` };
      }
      if (Date.now() > deadlineAt && !rollbackRequested) {
        if (!ours) return { status: 'failed', reason: 'rollout did not finish before slipway\'s deadline' };
        rollbackRequested = true;
        if (svc.PreviousSpec) {
          await this.docker
            .getService(svc.ID)
            .update({ _query: { version: svc.Version?.Index, rollback: 'previous' }, _body: svc.Spec });
        } else {
          return { status: 'failed', reason: `service did not become healthy before slipway's deadline${await this.taskFailure(svc.ID, req.imageRef)}` };
        }
      }
      await this.sleep(this.pollMs, signal);
    }
  }

  async confirm(req: RolloutRequest, deadlineAt: number, signal?: AbortSignal): Promise<RolloutOutcome> {
    for (;;) {
      signal?.throwIfAborted();
      const svc = await this.inspect(req.config.service);
      if (!svc) return { status: 'failed', reason: `service ${req.config.service} disappeared` };
      const ours = svc.Spec?.Labels?.[LABEL_DEPLOYMENT] === req.deploymentId;
      const state = svc.UpdateStatus?.State;
      const startedAt = Date.parse(svc.UpdateStatus?.StartedAt ?? '') || 0;
      if (state?.startsWith('rollback') && startedAt >= req.since - CLOCK_SKEW_MS) {
        const why = await this.taskFailure(svc.ID, req.imageRef);
        return { status: 'rolled_back', reason: `rolled back by Swarm in the update's last monitor window: ${svc.UpdateStatus?.Message ?? ''}${why}` };
      }
      if (ours && state === 'paused') return { status: 'failed', reason: `rollout paused by Swarm: ${svc.UpdateStatus?.Message ?? ''}` };
      // Completed, or a later change (someone else's) replaced this one after it had converged.
      if (!ours || state !== 'updating' || Date.now() > deadlineAt) return { status: 'succeeded' };
      await this.sleep(this.pollMs, signal);
    }
  }

  async runJob(req: RolloutRequest, deadlineAt: number, signal?: AbortSignal): Promise<RolloutOutcome> {
    const { service } = req.config;
    const network = await this.ensureNetwork(req);
    let svc = await this.inspect(service);
    if (svc) this.assertOwned(svc, req.repo, req.environment);
    // A job runs once per release: an earlier release's run is replaced, this release's (a restarted worker) is followed.
    if (svc && svc.Spec?.Labels?.[LABEL_DEPLOYMENT] !== req.deploymentId) {
      await this.docker.getService(svc.ID).remove();
      svc = null;
    }
    if (!svc) {
      const spec = serviceSpec(req, network);
      await this.docker.createService({
        ...spec,
        Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
        // A job's task ends: an image's HEALTHCHECK means nothing for it, and a failed run is the answer, not retried.
        TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...spec.TaskTemplate.ContainerSpec, HealthCheck: { Test: ['NONE'] } }, RestartPolicy: { Condition: 'none' } },
        UpdateConfig: undefined,
        RollbackConfig: undefined,
        EndpointSpec: { Mode: 'dnsrr' },
      } as unknown as Docker.CreateServiceOptions);
      svc = await this.inspect(service);
      if (!svc) return { status: 'failed', reason: `job ${service} disappeared as it was created` };
    }
    for (;;) {
      signal?.throwIfAborted();
      const tasks = await this.serviceTasks(svc.ID);
      if (tasks.some((t) => t.Status?.State === 'complete')) return { status: 'succeeded' };
      const failed = tasks.find((t) => ['failed', 'rejected'].includes(t.Status?.State ?? ''));
      if (failed) {
        const logs = await this.logTail(svc.ID);
        return { status: 'failed', reason: `job ${service} failed: ${failed.Status?.Err || failed.Status?.Message || failed.Status?.State}${logs ? `; its last output: ${logs}` : ''}` };
      }
      if (Date.now() > deadlineAt) {
        await this.docker.getService(svc.ID).remove().catch(() => undefined);
        return { status: 'failed', reason: `job ${service} did not finish before slipway's deadline; it was stopped` };
      }
      await this.sleep(this.pollMs, signal);
    }
  }

  /** The last lines a service's tasks wrote, joined with ` | ` (empty when the engine keeps none). */
  private async logTail(serviceId: string, lines = 5): Promise<string> {
    try {
      const raw = (await this.docker.getService(serviceId).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
      return demuxLogs(raw).split('\n').map((l) => l.trim()).filter(Boolean).slice(-lines).join(' | ');
    } catch {
      return '';
    }
  }

  async state(config: EnvironmentSpec): Promise<RunningState> {
    const svc = await this.inspect(config.service);
    if (!svc) return { imageRef: null, deploymentId: null, rolling: false, updateState: null, updateStartedAt: null };
    const state = svc.UpdateStatus?.State;
    const spec = svc.Spec?.TaskTemplate as Docker.ContainerTaskSpec | undefined;
    return {
      imageRef: spec?.ContainerSpec?.Image ?? null,
      deploymentId: svc.Spec?.Labels?.[LABEL_DEPLOYMENT] ?? null,
      rolling: state === 'updating' || state === 'rollback_started',
      updateState: state ?? null,
      updateStartedAt: Date.parse(svc.UpdateStatus?.StartedAt ?? '') || null,
    };
  }

  async tasks(config: EnvironmentSpec): Promise<TaskView[]> {
    const svc = await this.inspect(config.service);
    if (!svc?.ID) return [];
    // Newest first, as `docker service ps` lists them.
    const tasks = (await this.serviceTasks(svc.ID)).sort((a, b) => (b.Status?.Timestamp ?? '').localeCompare(a.Status?.Timestamp ?? ''));
    return tasks.map((t) => {
      const image = t.Spec?.ContainerSpec?.Image ?? '';
      const at = image.lastIndexOf('@');
      return {
        id: t.ID,
        slot: t.Slot ?? null,
        state: t.Status?.State ?? 'unknown',
        desiredState: t.DesiredState,
        digest: at >= 0 ? image.slice(at + 1) : null,
        message: t.Status?.Err || t.Status?.Message || '',
      };
    });
  }

  async remove(repo: string, config: EnvironmentSpec): Promise<void> {
    // An application: each of its services, then the network they share.
    for (const svc of config.services ?? []) await this.remove(repo, svc.spec);
    await this.removeProxy(config);
    // Only what carries this repository's and environment's labels goes: never another's service or network.
    const svc = await this.inspect(config.service);
    if (svc && isOwnedBy(svc.Spec?.Labels ?? {}, repo, config.name)) await this.docker.getService(svc.ID).remove();
    await this.removeConfigs(config.service, null);
    // A release's service shares its environment's network: that goes with the environment.
    if (config.network) return;
    const net = await this.findNetwork(networkName(config.service));
    if (net && isOwnedBy(net.Labels ?? {}, repo, config.name)) {
      // The network goes once its tasks have stopped; Swarm detaches them asynchronously.
      for (let i = 0; i < 80; i++) {
        try {
          await this.docker.getNetwork(net.Id).remove();
          return;
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === 404) return;
          await this.sleep(250);
        }
      }
    }
  }

  private async ensureProxy(req: RolloutRequest, network: string): Promise<void> {
    const { config } = req;
    const name = proxyName(config.service);
    this.proxyImage ??= ensureProxyImage(this.docker, this.opts.proxyImage).catch((err: unknown) => {
      this.proxyImage = null;
      throw err;
    });
    const image = await this.proxyImage;
    const text = renderProxyConfig(config);
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
    const configName = `${config.service}-proxy-${hash}`;
    const labels = { ...ownerLabels(req.repo, req.environment), [LABEL_ROLE]: 'proxy' };
    const configs = await this.docker.listConfigs({ filters: { name: [configName] } });
    let configId = (configs as { ID: string; Spec?: { Name?: string } }[]).find((c) => c.Spec?.Name === configName)?.ID;
    if (!configId) {
      const created = await this.docker.createConfig({ Name: configName, Labels: labels, Data: Buffer.from(text).toString('base64') });
      configId = (created as { id?: string; ID?: string }).id ?? (created as { ID?: string }).ID;
    }
    const spec = {
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          Labels: labels,
          Init: true,
          // HAProxy's soft stop: finish the requests in flight, then exit.
          StopSignal: 'SIGUSR1',
          StopGracePeriod: 10_000 * NS,
          Configs: [{ ConfigID: configId, ConfigName: configName, File: { Name: '/etc/haproxy/haproxy.cfg', UID: '0', GID: '0', Mode: 0o444 } }],
        },
        RestartPolicy: { Condition: 'any', Delay: 500 * NS },
        Placement: {},
        Networks: [{ Target: network }],
      },
      // One proxy per node, bound to the node's own ports: no routing mesh (and no IPVS) involved.
      Mode: { Global: {} },
      // Host-mode ports cannot be held twice on a node, so the proxy itself is replaced stop-first.
      UpdateConfig: { Parallelism: 1, Order: 'stop-first', FailureAction: 'rollback', Monitor: 2000 * NS },
      EndpointSpec: {
        Mode: 'vip',
        Ports: proxiedPorts(config).map((p) => ({ Protocol: 'tcp', TargetPort: p.published, PublishedPort: p.published, PublishMode: 'host' })),
      },
    };
    const existing = await this.inspect(name);
    if (!existing) {
      await this.docker.createService(spec as Docker.CreateServiceOptions);
    } else {
      this.assertOwned(existing, req.repo, req.environment);
      const current = (existing.Spec?.TaskTemplate as Docker.ContainerTaskSpec | undefined)?.ContainerSpec;
      const same = current?.Image === image && current?.Configs?.[0]?.ConfigName === configName;
      if (!same) await this.docker.getService(existing.ID).update({ _query: { version: existing.Version?.Index }, _body: spec });
    }
    await this.removeConfigs(config.service, configName);
  }

  private async removeProxy(config: EnvironmentSpec): Promise<void> {
    const svc = await this.inspect(proxyName(config.service));
    if (svc && svc.Spec?.Labels?.[LABEL_ROLE] === 'proxy' && svc.Spec?.Labels?.[LABEL_KIND] === 'deploy') {
      await this.docker.getService(svc.ID).remove();
    }
  }

  /** Removes the proxy configs of this service except `keep`; a config still in use is left for next time. */
  private async removeConfigs(service: string, keep: string | null): Promise<void> {
    const configs = (await this.docker.listConfigs({ filters: { label: [`${LABEL_ROLE}=proxy`] } })) as unknown as {
      ID: string;
      Spec?: { Name?: string; Labels?: Record<string, string> };
    }[];
    for (const c of configs) {
      const name = c.Spec?.Name ?? '';
      if (name === keep || !name.startsWith(`${service}-proxy-`) || c.Spec?.Labels?.[LABEL_KIND] !== 'deploy') continue;
      await this.docker.getConfig(c.ID).remove().catch(() => undefined);
    }
  }

  /** The environment's network: created with its owner's labels, or reused only when it carries them. */
  private async ensureNetwork(req: RolloutRequest): Promise<string> {
    const name = req.config.network ?? networkName(req.config.service);
    const found = await this.findNetwork(name);
    if (found) return this.ownedNetwork(found, req.repo, req.environment);
    try {
      const net = await this.docker.createNetwork({
        Name: name,
        Driver: 'overlay',
        Attachable: true,
        CheckDuplicate: true,
        Labels: ownerLabels(req.repo, req.environment),
      });
      return net.id;
    } catch (err) {
      // Another process created it at the same moment.
      const again = await this.findNetwork(name);
      if (again) return this.ownedNetwork(again, req.repo, req.environment);
      throw err;
    }
  }

  /**
   * A network of the environment's name that someone else made could be attached to anything: joining
   * it would put the environment's tasks next to containers slipway knows nothing about.
   */
  private ownedNetwork(net: Docker.NetworkInspectInfo, repo: string, environment: string): string {
    const labels = net.Labels ?? {};
    if (isOwnedBy(labels, repo, environment)) return net.Id;
    throw new DeployError(
      409,
      'network_not_owned',
      `Docker network ${net.Name} exists but is not slipway's network for ${repo} ${environment} (${describeOwner(labels)}); ` +
        `remove it (docker network rm ${net.Name}) if nothing needs it, or rename the environment's service so its network is named differently`,
    );
  }

  private async findNetwork(name: string): Promise<Docker.NetworkInspectInfo | undefined> {
    const nets = await this.docker.listNetworks({ filters: { name: [name] } });
    return nets.find((n) => n.Name === name);
  }

  private async inspect(name: string): Promise<Docker.Service | null> {
    try {
      return (await this.docker.getService(name).inspect()) as Docker.Service;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  private assertOwned(svc: Docker.Service, repo: string, environment: string): void {
    if (!isOwnedBy(svc.Spec?.Labels ?? {}, repo, environment)) {
      throw new DeployError(
        409,
        'service_not_owned',
        `Swarm service ${svc.Spec?.Name} exists but is not slipway's service for ${repo} ${environment}; rename the environment's service or remove the existing one`,
      );
    }
  }

  private async serviceTasks(serviceId: string): Promise<Task[]> {
    return (await this.docker.listTasks({ filters: { service: [serviceId] } })) as Task[];
  }

  private async converged(serviceId: string, imageRef: string, replicas: number): Promise<boolean> {
    const tasks = await this.serviceTasks(serviceId);
    const running = tasks.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running');
    return running.length === replicas && running.every((t) => t.Spec?.ContainerSpec?.Image === imageRef);
  }

  /** Why the newest failed task of `imageRef` failed, as `: <reason>` (empty when none failed). */
  private async taskFailure(serviceId: string, imageRef: string): Promise<string> {
    const failed = (await this.serviceTasks(serviceId))
      .filter((t) => t.Spec?.ContainerSpec?.Image === imageRef && ['failed', 'rejected', 'shutdown'].includes(t.Status?.State ?? '') && t.Status?.Err)
      .sort((a, b) => (b.Status?.Timestamp ?? '').localeCompare(a.Status?.Timestamp ?? ''));
    return failed[0] ? `: ${failed[0].Status?.Err}` : '';
  }
}

/** The labels every Swarm object of an environment carries: they prove slipway made it, and for whom. */
function ownerLabels(repo: string, environment: string): Record<string, string> {
  return { [LABEL_KIND]: 'deploy', [LABEL_REPO]: repo, [LABEL_ENV]: environment };
}

function isOwnedBy(labels: Record<string, string>, repo: string, environment: string): boolean {
  return labels[LABEL_KIND] === 'deploy' && labels[LABEL_REPO] === repo && labels[LABEL_ENV] === environment;
}

/** What an object's labels say about its owner, for a person deciding what to do with it. */
function describeOwner(labels: Record<string, string>): string {
  const said = [LABEL_KIND, LABEL_REPO, LABEL_ENV].filter((k) => k in labels).map((k) => `${k}=${labels[k]}`);
  return said.length > 0 ? `its labels say ${said.join(', ')}` : 'it has no slipway labels';
}

export function networkName(service: string): string {
  return `${service}-net`;
}

export function proxyName(service: string): string {
  return `${service}-proxy`;
}

/** The text of the Engine's multiplexed log stream (8-byte frame headers, no TTY). */
function demuxLogs(raw: Buffer): string {
  const out: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length) {
    const size = raw.readUInt32BE(at + 4);
    out.push(raw.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The Swarm service an environment runs as, at one revision: its image by digest, on its own
 * network, updated and rolled back at the environment's pace; proxied environments resolve their
 * tasks by DNS (dnsrr), the others publish their ports (vip).
 */
export function serviceSpec(req: RolloutRequest, network: string) {
  const { config } = req;
  const labels = ownerLabels(req.repo, req.environment);
  const update = {
    Parallelism: config.update.parallelism,
    Delay: config.update.delayMs * NS,
    FailureAction: config.update.failureAction,
    Monitor: config.update.monitorMs * NS,
    MaxFailureRatio: config.update.maxFailureRatio,
    Order: config.update.order,
  };
  const check = healthCheck(config);
  const health = check && {
    Test: check.test,
    Interval: check.intervalMs * NS,
    Timeout: check.timeoutMs * NS,
    Retries: check.retries,
    StartPeriod: check.startPeriodMs * NS,
  };
  return {
    Name: config.service,
    Labels: { ...labels, [LABEL_DEPLOYMENT]: req.deploymentId, 'io.slipway.revision': String(req.revision) },
    TaskTemplate: {
      ContainerSpec: {
        Image: req.imageRef,
        ...(config.command ? { Args: config.command } : {}),
        Labels: labels,
        Env: Object.entries(config.env).map(([k, v]) => `${k}=${v}`),
        // An init process reaps children and forwards signals: tasks stop in a fraction of a second.
        Init: true,
        StopGracePeriod: 10_000 * NS,
        ...(health ? { HealthCheck: health } : {}),
      },
      RestartPolicy: { Condition: 'any', Delay: 1000 * NS },
      // Always an explicit (empty) placement: an update whose only difference is a placement
      // that went missing makes dockerd 20.10's swarmkit dereference it and crash (moby#37883).
      Placement: {},
      Networks: [{ Target: network, Aliases: [config.service] }],
    },
    Mode: { Replicated: { Replicas: config.replicas } },
    UpdateConfig: update,
    // A rollback is an update too: same pace, and it never gives up half way.
    RollbackConfig: { ...update, FailureAction: 'pause' },
    EndpointSpec:
      config.endpoint === 'proxy'
        ? { Mode: 'dnsrr' }
        : {
            Mode: 'vip',
            Ports: config.ports.map((p) => ({ Protocol: p.protocol, TargetPort: p.target, PublishedPort: p.published, PublishMode: 'ingress' })),
          },
  };
}
