import type { BuilderSpec, EnvironmentSpec, PortSpec, RepoConfig } from './types.js';
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
    if (e.health) {
      spec.health = { cmd: [...e.health.cmd] };
      if (e.health.interval !== undefined) spec.health.intervalMs = ms(e.health.interval);
      if (e.health.timeout !== undefined) spec.health.timeoutMs = ms(e.health.timeout);
      if (e.health.retries !== undefined) spec.health.retries = e.health.retries;
      if (e.health.start_period !== undefined) spec.health.startPeriodMs = ms(e.health.start_period);
    }
    if (e.promote_from !== undefined) spec.promoteFrom = e.promote_from;
    out[name] = spec;
  }
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
