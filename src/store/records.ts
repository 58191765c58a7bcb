import { z } from 'zod';

/** Build and deployment records exactly as ../shared/spec/api.md names their fields. */

export const BuildStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded']);
export type BuildStatus = z.infer<typeof BuildStatus>;

export const BuildRecord = z.object({
  id: z.string(),
  repo: z.string(), // owner/name
  ref: z.string(), // refs/heads/main, refs/tags/v1.2.3
  sha: z.string(), // the commit built (a tag's commit, never the tag object)
  rules: z.array(z.string()),
  tags: z.array(z.string()),
  image: z.string(), // the config's image, without tag
  status: BuildStatus,
  digest: z.string().nullable(), // sha256:<hex> once pushed
  error: z.string().nullable(),
  queuedAt: z.string(), // ISO-8601
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  deployments: z.array(z.string()),
  // Beyond the contract: what a builder needs and what people want to see.
  context: z.string(),
  dockerfile: z.string(),
  build_args: z.record(z.string(), z.string()),
  cache: z.boolean(),
  target: z.string().optional(), // the Dockerfile stage built; absent: the last
  deploy: z.array(z.string()), // environments to roll out to after success
  cloneUrl: z.string().nullable(),
  deliveryId: z.string().nullable(),
  trigger: z.enum(['webhook', 'manual']),
  by: z.string(), // token name, or `github:<pusher>` for webhooks
  supersededBy: z.string().nullable(),
  warnings: z.array(z.string()),
});
export type BuildRecord = z.infer<typeof BuildRecord>;

export const TERMINAL_BUILD_STATUSES: readonly BuildStatus[] = ['succeeded', 'failed', 'cancelled', 'superseded'];

export const DeploymentStatus = z.enum(['pending', 'running', 'succeeded', 'rolled_back', 'failed']);
export type DeploymentStatus = z.infer<typeof DeploymentStatus>;

/** Where one service of a release stands: `unchanged` ran this digest and spec already; `removed` was new in a release rolled back. */
export const ReleaseServiceStatus = z.enum(['pending', 'running', 'succeeded', 'unchanged', 'rolled_back', 'failed', 'removed']);
export type ReleaseServiceStatus = z.infer<typeof ReleaseServiceStatus>;

/** One service of a release: what it runs in this release, and what it ran before (for the audit and the rollback). */
export const ReleaseService = z.object({
  name: z.string(),
  /** The Swarm service's name. */
  service: z.string(),
  role: z.enum(['web', 'worker', 'job']),
  image: z.string(),
  digest: z.string(),
  /** The build the digest came from, when known. */
  build: z.string().nullable(),
  /** The digest it ran in the previous release, null when it is new in this one. */
  before: z.string().nullable(),
  status: ReleaseServiceStatus,
  error: z.string().nullable(),
});
export type ReleaseService = z.infer<typeof ReleaseService>;

export const DeploymentRecord = z.object({
  id: z.string(),
  repo: z.string(),
  environment: z.string(),
  revision: z.number().int().positive(),
  digest: z.string(), // sha256:<hex>
  image: z.string(), // repository without tag; the rollout uses `${image}@${digest}`
  build: z.string().nullable(), // the build it came from, when known
  trigger: z.enum(['build', 'promote', 'rollback', 'manual']),
  by: z.string(), // token name, `slipway` for automatic rollouts
  status: DeploymentStatus,
  /** When it was asked for (records of older slipways have none). */
  requestedAt: z.string().optional(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  error: z.string().nullable(),
  /**
   * A release of a multi-service environment: every service with its digest, in rollout order. The
   * top-level digest and image are then the first web (else first) service's.
   */
  services: z.array(ReleaseService).optional(),
  /** `rolling_back`: a service failed and the services already updated are being restored (a release's own undo). */
  phase: z.enum(['rolling_out', 'rolling_back']).optional(),
});
export type DeploymentRecord = z.infer<typeof DeploymentRecord>;

export const AuditEntry = z.object({
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  repo: z.string().nullable(),
  environment: z.string().optional(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  result: z.string(),
  /** A config change's diff, one `path: before → after` line per changed field. */
  changes: z.array(z.string()).optional(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;
