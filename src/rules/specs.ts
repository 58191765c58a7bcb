import type { BuilderSpec, EnvironmentConfig, EnvironmentSpec, HealthConfig, PortSpec, RepoConfig, ServiceConfig, ServiceSpec } from './types.js';
import { parseDuration, parseMemory } from './units.js';

// The document is validated, so every duration and size here parses.
const ms = (d: string): number => parseDuration(d)!;

/** The environments of a validated config with durations in milliseconds and ports parsed. */
export function environmentSpecs(config: RepoConfig): Record<string, EnvironmentSpec> {
  const out: Record<string, EnvironmentSpec> = {};
  for (const [name, e] of Object.entries(config.environments)) {
    const spec: EnvironmentSpec = {
      name,
      service: e.service,
      replicas: e.replicas,
      ports: e.ports.map(parsePort),
      endpoint: e.endpoint,
      env: { ...e.env },
      update: {
        parallelism: e.update.parallelism,
        delayMs: ms(e.update.delay),
        order: e.update.order,
        failureAction: e.update.failure_action,
        monitorMs: ms(e.update.monitor),
        maxFailureRatio: e.update.max_failure_ratio,
      },
      protected: e.protected,
    };
    if (e.health) spec.health = healthSpec(e.health);
    if (e.promote_from !== undefined) spec.promoteFrom = e.promote_from;
    if (e.command) spec.command = [...e.command];
    if (e.services) spec.services = rolloutOrder(e.services).map(([n, svc]) => serviceSpec(spec, e, n, svc));
    out[name] = spec;
  }
  return out;
}

function healthSpec(h: HealthConfig): NonNullable<EnvironmentSpec['health']> {
  const out: NonNullable<EnvironmentSpec['health']> = { cmd: [...h.cmd] };
  if (h.interval !== undefined) out.intervalMs = ms(h.interval);
  if (h.timeout !== undefined) out.timeoutMs = ms(h.timeout);
  if (h.retries !== undefined) out.retries = h.retries;
  if (h.start_period !== undefined) out.startPeriodMs = ms(h.start_period);
  return out;
}

/** One service of an application, in the single-service form the deployer rolls out. */
function serviceSpec(env: EnvironmentSpec, e: EnvironmentConfig, name: string, svc: ServiceConfig): ServiceSpec {
  const spec: EnvironmentSpec = {
    ...env,
    service: `${e.service}-${name}`,
    replicas: svc.replicas ?? 0,
    ports: svc.ports.map(parsePort),
    env: { ...svc.env },
    network: `${e.service}-net`,
  };
  delete spec.services;
  delete spec.health;
  delete spec.command;
  if (svc.health) spec.health = healthSpec(svc.health);
  if (svc.command) spec.command = [...svc.command];
  const at = svc.image?.indexOf('@') ?? -1;
  return {
    name,
    role: svc.role,
    source: svc.image !== undefined ? { image: svc.image.slice(0, at), digest: svc.image.slice(at + 1) } : { rule: svc.build! },
    dependsOn: [...svc.depends_on],
    spec,
  };
}

/** Jobs first (in config order), then every service after those it depends on, config order otherwise. */
function rolloutOrder(services: Record<string, ServiceConfig>): [string, ServiceConfig][] {
  const entries = Object.entries(services);
  const out: [string, ServiceConfig][] = entries.filter(([, s]) => s.role === 'job');
  const placed = new Set(out.map(([n]) => n));
  const place = (name: string): void => {
    if (placed.has(name)) return;
    placed.add(name);
    for (const dep of services[name]!.depends_on) place(dep);
    out.push([name, services[name]!]);
  };
  for (const [name] of entries) place(name);
  return out;
}

function parsePort(p: string): PortSpec {
  const [ports, protocol] = p.split('/') as [string, string | undefined];
  const [published, target] = ports.split(':').map(Number) as [number, number];
  return { published, target, protocol: protocol === 'udp' ? 'udp' : 'tcp' };
}

/** The builder settings of a validated config, typed. */
export function builderSpec(config: RepoConfig): BuilderSpec {
  const b = config.builder;
  const spec: BuilderSpec = {
    isolation: b.isolation,
    timeoutMs: ms(b.timeout),
    cancelSuperseded: b.cancel_superseded,
    concurrency: b.concurrency,
    network: b.network,
  };
  if (b.memory !== undefined) spec.memoryBytes = parseMemory(b.memory)!;
  if (b.cpus !== undefined) spec.cpus = b.cpus;
  return spec;
}
