import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditStore, BuildRecord, BuildStatus, DeliveryStore, EventBus, RepoSettingsStore, RepoStore, TokenStore } from '../store/index.js';
import type { CompiledCache, RulesEngine, WebhookHandler } from '../webhooks/index.js';
import type { Deployer } from '../deploy/index.js';
import type { SourcePolicy } from '../auth/index.js';
import type { LogFollowers } from '../builders/index.js';
import type { RequireRole } from './auth.js';
import type { StreamLimits } from './limits.js';

/** What the API needs of the lanes (src/queue): accept builds, cancel one. */
export interface LanesPort {
  submit(builds: BuildRecord[], opts?: { concurrency?: number; cancelSuperseded?: boolean }): Promise<{ superseded: string[] }>;
  cancel(id: string, by: string): Promise<BuildRecord>;
}

/** What the API reads of build records (src/store/builds.ts). */
export interface BuildsPort {
  get(id: string): Promise<BuildRecord | null>;
  list(q: { repo?: string; status?: BuildStatus; limit: number }): Promise<BuildRecord[]>;
  countByStatus<S extends BuildStatus>(statuses: readonly S[]): Promise<Record<S, number>>;
}

/** Everything routes may use; passed in by the composition root (src/main.ts) or a test. */
export interface ApiDeps {
  redis: Redis;
  /** Readiness pings it (dockerode's `ping`). */
  docker: { ping(): Promise<unknown> };
  log: Logger;
  clock: () => Date;
  /** prom-client registry served at /metrics; every part registers its metrics here. */
  metrics: Registry;
  adminToken: string | undefined;
  /** Largest webhook body (bytes); larger answers 413. */
  webhookMaxBytes: number;
  /** Bounds on what one caller holds or tries. */
  limits: { streamsPerToken: number; authFailuresPerMinute: number };
  /** SLIPWAY_METRICS_TOKEN: /metrics answers only with this bearer token; unset: open. */
  metricsToken: string | undefined;
  /** SLIPWAY_REGISTRY: repositories' images lie under `<registry>/<owner>/<name>` unless an admin maps another prefix. */
  registry: string;
  /** SLIPWAY_SOURCE_ALLOW: a config's `source.url` must be one of these. */
  sources: SourcePolicy;
  /** SLIPWAY_ALLOW_SHARED_BUILDS: a config may ask for `builder.isolation: shared`. */
  allowSharedBuilds: boolean;
  repos: RepoStore;
  /** Per-repository operator settings: image prefix, own webhook secret. */
  settings: RepoSettingsStore;
  tokens: TokenStore;
  audit: AuditStore;
  deliveries: DeliveryStore;
  events: EventBus;
  lanes: LanesPort;
  builds: BuildsPort;
  webhook: WebhookHandler;
  rules: RulesEngine;
  /** Compiled configs by version, shared with the webhook's decider. */
  compiled: CompiledCache;
  /** Environments, rollouts, promotion and rollback (src/deploy). */
  deployer: Deployer;
  /** Followers of build logs (SSE), sharing at most SLIPWAY_LOG_READERS Redis connections; closed by its owner. */
  logFollowers: LogFollowers;
}

/** What a route module receives: the deps plus the role guard. */
export interface RouteContext extends ApiDeps {
  requireRole: RequireRole;
  streams: StreamLimits;
}
