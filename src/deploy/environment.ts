import { environmentSpecs, RulesError, validateConfig, type EnvironmentSpec, type PortSpec } from '../rules/index.js';
import { DeployError } from './errors.js';

/**
 * Deploy's view of a repository's `environments`: the rules engine validates and types them
 * (`environmentSpecs`, durations in ms, ports parsed); this adapter only adds what rolling out needs.
 */

/** A repository config as stored (the normalised document the rules engine answered on PUT). */
export interface StoredRepoConfig {
  /** The repository's canonical owner/name. */
  repo: string;
  image: string;
  environments: Record<string, EnvironmentSpec>;
}

/**
 * Reads a stored config document through the rules engine. A document that no longer validates (stored by an
 * older slipway) answers 422 `invalid_environments` with every problem the rules engine names by path.
 */
export function readRepoConfig(repo: string, doc: unknown): StoredRepoConfig {
  try {
    const config = validateConfig(doc);
    return { repo, image: config.image, environments: environmentSpecs(config) };
  } catch (err) {
    if (err instanceof RulesError) throw new DeployError(422, 'invalid_environments', `the stored config of ${repo} is invalid`, err.problems);
    throw err;
  }
}

/** Swarm's HealthCheck timings slipway applies when `health` gives a `cmd` without them. */
const HEALTH_DEFAULTS = { intervalMs: 2000, timeoutMs: 2000, retries: 2, startPeriodMs: 0 } as const;

export interface HealthCheck {
  /** Docker's `Test` form as the rules engine normalised it: `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** The environment's health check with deploy's defaults filled, or undefined (the image's own HEALTHCHECK applies). */
export function healthCheck(spec: EnvironmentSpec): HealthCheck | undefined {
  const h = spec.health;
  if (!h) return undefined;
  return {
    test: [...h.cmd],
    intervalMs: h.intervalMs ?? HEALTH_DEFAULTS.intervalMs,
    timeoutMs: h.timeoutMs ?? HEALTH_DEFAULTS.timeoutMs,
    retries: h.retries ?? HEALTH_DEFAULTS.retries,
    startPeriodMs: h.startPeriodMs ?? HEALTH_DEFAULTS.startPeriodMs,
  };
}

/** The entry proxy speaks HTTP over TCP; UDP ports need `endpoint: mesh`. */
export function proxiedPorts(spec: EnvironmentSpec): PortSpec[] {
  return spec.ports.filter((p) => p.protocol === 'tcp');
}
