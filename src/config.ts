import { z } from 'zod';
import { parseSourceAllow, SourcePolicyError, type SourcePolicy } from './auth/index.js';
import { EgressPolicyError, parseEgressPolicy, type EgressPolicy } from './builders/index.js';

/**
 * The one place that reads process.env. Every setting of ../shared/spec/api.md "Processes and
 * settings" plus what the processes need; defaults are documented next to each field.
 * Other areas add their fields here additively.
 */

/** A duration: plain seconds (`20`) or with a unit (`1500ms`, `20s`, `2m`); parsed to milliseconds. */
const Duration = z.string().trim().transform((raw, ctx) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${raw}" (use e.g. 20, 20s, 1500ms, 2m)` });
    return z.NEVER;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
});

const Port = z.coerce.number().int().min(0).max(65535);

/** A setting read by a part's own parser: that parser's error (of class `own`) is the setting's problem. */
function parsedWith<T>(parse: (raw: string | undefined) => T, own: new (...args: never[]) => Error) {
  return z.string().optional().transform((raw, ctx): T => {
    try {
      return parse(raw);
    } catch (err) {
      if (!(err instanceof own)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}
const Optional = z.string().trim().min(1).optional().catch(undefined);

const Env = z.object({
  /** redis://… of the shared Redis. Unset: `slipway up` starts a private redis-server under SLIPWAY_DATA_DIR. */
  SLIPWAY_REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Redis's password (AUTH), when it is not in SLIPWAY_REDIS_URL; kept apart so a secret store can hold it. */
  SLIPWAY_REDIS_PASSWORD: Optional,
  /** Port of the HTTP server (API, webhook intake, dashboard). */
  SLIPWAY_PORT: Port.default(3000),
  /** Interface the HTTP server binds to. */
  SLIPWAY_HOST: z.string().min(1).default('127.0.0.1'),
  /** HMAC secret of the GitHub webhook. Required by `serve`; `up` creates one under SLIPWAY_DATA_DIR when unset. */
  SLIPWAY_WEBHOOK_SECRET: Optional,
  /** The previous secret, also accepted while a secret is being rotated. */
  SLIPWAY_WEBHOOK_SECRET_PREVIOUS: Optional,
  /** An admin token accepted as given (name `admin`), for bootstrapping. */
  SLIPWAY_ADMIN_TOKEN: Optional,
  /** Docker engine; default the local socket. Same syntax as the docker CLI (unix://…, tcp://…). */
  DOCKER_HOST: Optional,
  /** State of embedded services (`up`'s redis-server, its generated secret and token). */
  SLIPWAY_DATA_DIR: z.string().min(1).default('.slipway'),
  /** How long a stopping worker lets a running build finish before handing it back. */
  SLIPWAY_SHUTDOWN_GRACE: Duration.default(20_000),
  /** Build slots of one worker process (builds run at the same time). */
  SLIPWAY_WORKER_SLOTS: z.coerce.number().int().min(1).max(64).default(2),
  /** Largest webhook body accepted; larger answers 413 (GitHub caps payloads at 25 MB). */
  SLIPWAY_WEBHOOK_MAX_BYTES: z.coerce.number().int().positive().default(25 * 1024 * 1024),
  /** How long a delivery id is remembered for redelivery detection (at least 7 days). */
  SLIPWAY_DELIVERY_TTL: Duration.default(7 * 24 * 3_600_000).refine((ms) => ms >= 7 * 24 * 3_600_000, {
    message: 'must be at least 7 days (GitHub redelivers for 3 days; operators redeliver by hand later)',
  }),
  /** pino level: fatal error warn info debug trace silent. */
  SLIPWAY_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Open event streams (events, followed logs) one token may hold at once; past it 429. */
  SLIPWAY_STREAMS_PER_TOKEN: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Redis connections the followed build logs of one API process share (each a blocking reader over many logs). */
  SLIPWAY_LOG_READERS: z.coerce.number().int().min(1).max(64).default(2),
  /** Failed authentications per client address per minute before it is answered 429. */
  SLIPWAY_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(30),
  /** When set, GET /metrics needs `Authorization: Bearer <this>`. */
  SLIPWAY_METRICS_TOKEN: Optional,
  /** Client commands: where the API is. */
  SLIPWAY_URL: z.url().default('http://127.0.0.1:3000'),
  /** Client commands: the bearer token they send. */
  SLIPWAY_TOKEN: Optional,
  /** Builders: the registry host (host[:port]) that SLIPWAY_REGISTRY_USERNAME/PASSWORD are sent to; no other registry gets them. */
  SLIPWAY_REGISTRY: z.string().trim().min(1).default('127.0.0.1:5000'),
  /** Builders: registry credentials for pushes (never logged, never in records). Unset: anonymous pushes. */
  SLIPWAY_REGISTRY_USERNAME: Optional,
  SLIPWAY_REGISTRY_PASSWORD: Optional,
  /** Builders: comma-separated registries spoken to over plain http besides loopback ones (which always are). */
  SLIPWAY_INSECURE_REGISTRIES: z.string().trim().optional().transform((v) => (v ? v.split(',').map((r) => r.trim()).filter(Boolean) : [])),
  /**
   * Builders: what RUN steps of dedicated builds may reach: `public` (the internet, never this host,
   * private or link-local ranges, other builds or slipway's endpoints), `none`, or a comma-separated
   * allow-list of IPv4 CIDRs and host names.
   */
  SLIPWAY_BUILD_EGRESS: parsedWith<EgressPolicy>(parseEgressPolicy, EgressPolicyError),
  /**
   * Where builds may fetch source: hosts (`github.com`: only each repository's own
   * https://github.com/<owner>/<name>.git) and URL prefixes with their scheme (`file:///srv/git/`,
   * `http://127.0.0.1:`), comma-separated. Default github.com.
   */
  SLIPWAY_SOURCE_ALLOW: parsedWith<SourcePolicy>(parseSourceAllow, SourcePolicyError),
  /** Webhooks: a push whose `repository.pushed_at` is older than this is a replay and builds nothing. */
  SLIPWAY_REPLAY_WINDOW: Duration.default(3_600_000),
  /** Builders: repositories may set `builder.isolation: shared` (builds on the configured engine, beside everything else on it). */
  SLIPWAY_ALLOW_SHARED_BUILDS: z.enum(['true', 'false', '1', '0']).default('false').transform((v) => v === 'true' || v === '1'),
  /** Builders: how long a repository's cached dedicated engine stays up after a build for its next one; 0 stops it at once. */
  SLIPWAY_BUILDER_KEEP: Duration.default(60_000),
  /**
   * Builders: comma-separated base images (your golden images, `registry.example.com/base/node:20`)
   * a worker pulls once, at start and hourly, into a seed that new data roots of dedicated engines
   * start from (hard links), so a repository's first build does not pull them. Default none.
   */
  SLIPWAY_BASE_IMAGES: z.string().trim().optional().transform((v) => (v ? v.split(',').map((r) => r.trim()).filter(Boolean) : [])),
  /** Builders: GitHub token for cloning private repositories over https (sent only to github.com, never logged). */
  SLIPWAY_GITHUB_TOKEN: Optional,
  /** GitHub feedback: the REST API that commit statuses and deployments go to (GitHub Enterprise: https://HOST/api/v3). */
  SLIPWAY_GITHUB_API_URL: z.url().default('https://api.github.com'),
  /** GitHub feedback: the token that writes them (repo:status, repo_deployment); unset: SLIPWAY_GITHUB_TOKEN when the API is api.github.com; none: no feedback. */
  SLIPWAY_GITHUB_STATUS_TOKEN: Optional,
  /** The URL people open slipway at (links in GitHub statuses); default http://SLIPWAY_HOST:SLIPWAY_PORT. */
  SLIPWAY_PUBLIC_URL: z.url().optional(),
});

export type Config = {
  redisUrl: string | undefined;
  redisPassword?: string | undefined;
  port: number;
  host: string;
  webhookSecret: string | undefined;
  webhookSecretPrevious: string | undefined;
  adminToken: string | undefined;
  dockerHost: string | undefined;
  dataDir: string;
  shutdownGraceMs: number;
  workerSlots: number;
  webhookMaxBytes: number;
  deliveryTtlMs: number;
  logLevel: z.infer<typeof Env>['SLIPWAY_LOG_LEVEL'];
  url: string;
  token: string | undefined;
  /** The registry host (host[:port]) builds push to and credentials go to. */
  registry?: string;
  registryAuth?: { registry: string; username: string; password: string } | undefined;
  insecureRegistries?: string[];
  buildEgress?: EgressPolicy;
  builderKeepMs?: number;
  baseImages?: string[];
  allowSharedBuilds?: boolean;
  sourceAllow?: SourcePolicy;
  replayWindowMs?: number;
  streamsPerToken?: number;
  logReaders?: number;
  authFailuresPerMinute?: number;
  metricsToken?: string | undefined;
  githubToken?: string | undefined;
  githubApiUrl?: string;
  githubStatusToken?: string | undefined;
  publicUrl?: string;
};

/** An invalid setting: names every bad variable and why. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly problems: { path: string; message: string }[]) {
    super(`invalid settings: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment (default: process.env); `overrides` are command-line flags, which win. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  // Empty strings mean "unset" so `FOO= slipway serve` falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = Env.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  const e = parsed.data;
  const config: Config = {
    redisUrl: e.SLIPWAY_REDIS_URL,
    redisPassword: e.SLIPWAY_REDIS_PASSWORD,
    port: e.SLIPWAY_PORT,
    host: e.SLIPWAY_HOST,
    webhookSecret: e.SLIPWAY_WEBHOOK_SECRET,
    webhookSecretPrevious: e.SLIPWAY_WEBHOOK_SECRET_PREVIOUS,
    adminToken: e.SLIPWAY_ADMIN_TOKEN,
    dockerHost: e.DOCKER_HOST,
    dataDir: e.SLIPWAY_DATA_DIR,
    shutdownGraceMs: e.SLIPWAY_SHUTDOWN_GRACE,
    workerSlots: e.SLIPWAY_WORKER_SLOTS,
    webhookMaxBytes: e.SLIPWAY_WEBHOOK_MAX_BYTES,
    deliveryTtlMs: e.SLIPWAY_DELIVERY_TTL,
    logLevel: e.SLIPWAY_LOG_LEVEL,
    url: e.SLIPWAY_URL,
    token: e.SLIPWAY_TOKEN,
    registry: e.SLIPWAY_REGISTRY,
    registryAuth:
      e.SLIPWAY_REGISTRY_USERNAME && e.SLIPWAY_REGISTRY_PASSWORD
        ? { registry: e.SLIPWAY_REGISTRY, username: e.SLIPWAY_REGISTRY_USERNAME, password: e.SLIPWAY_REGISTRY_PASSWORD }
        : undefined,
    insecureRegistries: e.SLIPWAY_INSECURE_REGISTRIES,
    buildEgress: e.SLIPWAY_BUILD_EGRESS,
    builderKeepMs: e.SLIPWAY_BUILDER_KEEP,
    baseImages: e.SLIPWAY_BASE_IMAGES,
    allowSharedBuilds: e.SLIPWAY_ALLOW_SHARED_BUILDS,
    sourceAllow: e.SLIPWAY_SOURCE_ALLOW,
    replayWindowMs: e.SLIPWAY_REPLAY_WINDOW,
    streamsPerToken: e.SLIPWAY_STREAMS_PER_TOKEN,
    logReaders: e.SLIPWAY_LOG_READERS,
    authFailuresPerMinute: e.SLIPWAY_AUTH_FAILURES_PER_MINUTE,
    metricsToken: e.SLIPWAY_METRICS_TOKEN,
    githubToken: e.SLIPWAY_GITHUB_TOKEN,
    githubApiUrl: e.SLIPWAY_GITHUB_API_URL,
    // The clone token is promised to github.com only: it writes statuses only to github.com's API.
    githubStatusToken:
      e.SLIPWAY_GITHUB_STATUS_TOKEN ?? (new URL(e.SLIPWAY_GITHUB_API_URL).host === 'api.github.com' ? e.SLIPWAY_GITHUB_TOKEN : undefined),
    publicUrl: e.SLIPWAY_PUBLIC_URL ?? `http://${e.SLIPWAY_HOST}:${e.SLIPWAY_PORT}`,
  };
  return { ...config, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}
