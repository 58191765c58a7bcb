import { createServer as createHttpServer, type Server } from 'node:http';
import Docker from 'dockerode';
import { Redis, type RedisOptions } from 'ioredis';
import { pino, type Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { claimsOf, createApi } from './api/index.js';
import type { Config } from './config.js';
import { Deployer, DeploymentStore, DeployWorker, SwarmTarget, repoConfigSource } from './deploy/index.js';
import { Lanes, LaneWorker, type BuildRunner } from './queue/index.js';
import { parseSourceAllow } from './auth/index.js';
import { createBuilders, LogFollowers, type Builders, type Endpoint } from './builders/index.js';
import { createFeedbackBus, Lifecycle, publishBuilds, type FeedbackSettings } from './pipeline/index.js';
import { AuditStore, BuildStore, DeliveryStore, keys, RepoSettingsStore, RepoStore, TokenStore, type BuildRecord } from './store/index.js';
import { CompiledCache, createDecider, createVerifier, createWebhookHandler, rulesEngine } from './webhooks/index.js';

/**
 * The composition root: the only place that builds real collaborators (Redis, Docker, logger,
 * clock, metrics) and wires the parts. `serve` = API + webhook intake; `worker` = builds
 * and rollouts. (`slipway up`, both on one machine, is src/cli/up.ts.)
 */

/** Start-up refused (bad Redis policy, Redis unreachable, missing secret): the CLI prints it and exits 1. */
export class StartupError extends Error {
  readonly code = 'startup_refused';
}

const REDIS_CHECK_MS = 10_000;

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: { service: 'slipway' } });
}

/** A Docker client for DOCKER_HOST (unix:///path, tcp://host:port, http(s)://host:port), default the local socket. */
export function dockerClient(dockerHost: string | undefined): Docker {
  if (!dockerHost) return new Docker({ socketPath: '/var/run/docker.sock' });
  const u = new URL(dockerHost);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  const protocol = u.protocol === 'https:' ? 'https' : 'http';
  return new Docker({ host: u.hostname, port: Number(u.port || (protocol === 'https' ? 2376 : 2375)), protocol });
}

/**
 * Connects and proves the Redis is fit for slipway within 10 s: reachable, and
 * `maxmemory-policy noeviction` (an evicting Redis silently drops queued builds).
 */
export async function connectRedis(url: string, log: Logger, opts: RedisOptions = {}): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000, ...opts });
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  let timer: NodeJS.Timeout | undefined;
  try {
    const policy = await Promise.race([
      (async () => {
        await redis.connect();
        const info = await redis.info('memory');
        return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StartupError(`cannot reach Redis at ${redactUrl(url)} within ${REDIS_CHECK_MS / 1000} s: is it running? (SLIPWAY_REDIS_URL)`)), REDIS_CHECK_MS);
      }),
    ]);
    if (policy !== 'noeviction') {
      throw new StartupError(
        `Redis maxmemory-policy is ${policy}; slipway needs noeviction (an evicting Redis silently drops queued builds). ` +
          `Fix: redis-cli -u ${redactUrl(url)} CONFIG SET maxmemory-policy noeviction, and put "maxmemory-policy noeviction" in redis.conf so it survives a restart.`,
      );
    }
    return redis;
  } catch (err) {
    redis.disconnect();
    if (err instanceof StartupError) throw err;
    const message = (err as Error).message;
    // A Redis that wants a password closes or refuses an unauthenticated client.
    const hint = /NOAUTH|WRONGPASS|Connection is closed/i.test(message) ? '; if it needs a password, set SLIPWAY_REDIS_PASSWORD (or put it in the URL)' : '';
    throw new StartupError(`cannot use Redis at ${redactUrl(url)}: ${message} (SLIPWAY_REDIS_URL${hint})`);
  } finally {
    clearTimeout(timer);
  }
}

function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/** What builds must never reach: this process's Redis, the API and the registry. */
function slipwayEndpoints(redis: Redis, config: Config): Endpoint[] {
  const registry = /^(?<host>\[[^\]]+\]|[^:/]+)(?::(?<port>\d+))?$/.exec(config.registry ?? '')?.groups;
  return [
    { host: redis.options.host ?? '127.0.0.1', port: redis.options.port ?? 6379 },
    { host: config.host, port: config.port },
    ...(registry?.host ? [{ host: registry.host, port: Number(registry.port ?? 443) }] : []),
  ];
}

/** The builders workers use (runner, Redis build logs, reaper). The single place where the real builder is plugged in. */
function createBuildersFor(deps: { docker: Docker; redis: Redis; log: Logger; config: Config }): Builders {
  const { config } = deps;
  return createBuilders({
    redis: deps.redis,
    docker: deps.docker,
    dataDir: config.dataDir,
    repos: new RepoStore(deps.redis),
    log: deps.log.child({ part: 'builders' }),
    insecureRegistries: config.insecureRegistries ?? [],
    egress: config.buildEgress ?? { kind: 'public' },
    protect: slipwayEndpoints(deps.redis, config),
    keepEngineMs: config.builderKeepMs ?? 60_000,
    baseImages: config.baseImages ?? [],
    allowSharedBuilds: config.allowSharedBuilds ?? false,
    ...(config.registryAuth ? { registryCredentials: { [config.registryAuth.registry]: config.registryAuth } } : {}),
    ...(config.githubToken ? { githubToken: config.githubToken } : {}),
  });
}

function feedbackSettings(config: Config): FeedbackSettings {
  return { githubStatusToken: config.githubStatusToken, githubApiUrl: config.githubApiUrl, publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}` };
}

export interface Running {
  close(): Promise<void>;
}

export interface ServeHandle extends Running {
  url: string;
  server: Server;
}

function requireRedisUrl(config: Config): string {
  if (!config.redisUrl) throw new StartupError('SLIPWAY_REDIS_URL is not set: point it at a Redis ≥ 7 (e.g. redis://127.0.0.1:6379), or use `slipway up`');
  if (!config.redisPassword) return config.redisUrl;
  // The password kept apart from the URL (a secret store's key), put where ioredis reads it.
  const url = new URL(config.redisUrl);
  url.password = encodeURIComponent(config.redisPassword);
  return url.toString();
}

/** `slipway serve`: the API, webhook intake and dashboard. */
export async function startServe(config: Config, o: { log?: Logger; clock?: () => Date } = {}): Promise<ServeHandle> {
  const log = o.log ?? createLogger(config);
  const clock = o.clock ?? (() => new Date());
  if (!config.webhookSecret) throw new StartupError('SLIPWAY_WEBHOOK_SECRET is not set: set it to the secret configured on the GitHub webhook');
  // The API's connection fails fast while Redis is away (503s), instead of queueing requests.
  // No auto-pipelining: a delivery is one command (the submit script), sent at once; the lanes
  // already batch a turn's submissions into one call (holding them longer measured slower).
  const redis = await connectRedis(requireRedisUrl(config), log, { enableOfflineQueue: false });
  const docker = dockerClient(config.dockerHost);
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });

  const repos = new RepoStore(redis);
  // Configs stored by an older slipway get the version entry that intake's writes check.
  await repos.indexVersions();
  // …and the claims index that config writes check (service names, host ports).
  await repos.indexClaims((stored) => claimsOf(stored.config));
  const deliveries = new DeliveryStore(redis, config.deliveryTtlMs);
  const engine = rulesEngine;
  const compiled = new CompiledCache(engine);
  const events = createFeedbackBus(redis, feedbackSettings(config), log);
  // Without GitHub feedback, submissions publish their build events inside the submit script (the
  // webhook's hot path: no extra round trip, nothing read back). With it, they go through this
  // process's event bus, whose onPublish reports each change to GitHub.
  const lanes = new Lanes({
    redis,
    log,
    clock: () => clock().getTime(),
    onChange: publishBuilds(events, log),
    ...(config.githubStatusToken ? {} : { events: keys.eventsQueued }),
  });
  const builds = new BuildStore(redis);
  const settings = new RepoSettingsStore(redis, { clock: () => clock().getTime() });
  const webhook = createWebhookHandler({
    verify: createVerifier({ shared: config.webhookSecret, previous: config.webhookSecretPrevious, own: (repo) => settings.webhookSecret(repo) }),
    decide: createDecider({ repos, engine, cache: compiled, sources: config.sourceAllow ?? parseSourceAllow(undefined), replayWindowMs: config.replayWindowMs ?? 3_600_000 }),
    enqueue: (b, opts) => lanes.submit(b, opts),
    deliveries,
    log,
    clock,
    metrics,
  });
  const logFollowers = new LogFollowers({ redis, readers: config.logReaders ?? 2 });
  const app = createApi({
    redis,
    docker,
    log,
    clock,
    metrics,
    adminToken: config.adminToken,
    webhookMaxBytes: config.webhookMaxBytes,
    allowSharedBuilds: config.allowSharedBuilds ?? false,
    sources: config.sourceAllow ?? parseSourceAllow(undefined),
    registry: config.registry ?? '127.0.0.1:5000',
    limits: { streamsPerToken: config.streamsPerToken ?? 20, authFailuresPerMinute: config.authFailuresPerMinute ?? 30 },
    metricsToken: config.metricsToken,
    repos,
    settings,
    tokens: new TokenStore(redis),
    audit: new AuditStore(redis),
    deliveries,
    events,
    lanes,
    builds,
    webhook,
    rules: engine,
    compiled,
    // The target here only reads: the tasks of a rollout in progress (`GET /api/deployments/{id}`).
    logFollowers,
    deployer: new Deployer({ store: new DeploymentStore(redis), configs: repoConfigSource(repos), builds, audit: new AuditStore(redis), events, clock, target: new SwarmTarget({ docker }), log }),
  });

  const server = createHttpServer(app);
  await new Promise<void>((ok, fail) => {
    server.once('listening', ok);
    server.once('error', fail);
    server.listen(config.port, config.host);
  });
  const addr = server.address();
  const url = `http://${config.host}:${typeof addr === 'object' && addr ? addr.port : config.port}`;
  log.info({ url }, 'slipway serve: listening');

  return {
    url,
    server,
    close: async () => {
      // Finish requests in flight; end event and log streams and idle keep-alives so we exit within 10 s.
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      await events.close();
      await logFollowers.close();
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 8_000);
      await closed;
      clearTimeout(force);
      await lanes.close();
      redis.disconnect();
    },
  };
}

/** `slipway worker`: runs builds from the lanes. */
export async function startWorker(config: Config, o: { log?: Logger; runner?: BuildRunner } = {}): Promise<Running> {
  const log = o.log ?? createLogger(config);
  const redis = await connectRedis(requireRedisUrl(config), log, { maxRetriesPerRequest: null });
  const docker = dockerClient(config.dockerHost);
  const builders = createBuildersFor({ docker, redis, log, config });
  const runner = o.runner ?? builders.runner;
  const events = createFeedbackBus(redis, feedbackSettings(config), log);
  // Rollouts run here too; a succeeded build whose rules say `deploy: <env>` queues its rollout (src/pipeline).
  const deployStore = new DeploymentStore(redis);
  const builds = new BuildStore(redis);
  const audit = new AuditStore(redis);
  const deployer = new Deployer({ store: deployStore, configs: repoConfigSource(new RepoStore(redis)), builds, audit, events });
  const deployWorker = new DeployWorker({ store: deployStore, target: new SwarmTarget({ docker }), audit, events, log });
  const lifecycle = new Lifecycle({ deployer, builds, publish: publishBuilds(events, log), log });
  const onChange = (record: BuildRecord) => {
    builders.onBuildChange(record);
    lifecycle.buildChanged(record);
  };
  const worker = new LaneWorker({ redis, runner, slots: config.workerSlots, log, onChange, openLog: (record) => builders.openLog(record) });
  // Remove what builds of dead workers left before taking new ones.
  await builders.start();
  await worker.start();
  deployWorker.start();
  await lifecycle.start();
  log.info({ slots: config.workerSlots }, 'slipway worker: started');
  return {
    close: async () => {
      await Promise.all([worker.close(config.shutdownGraceMs), deployWorker.stop(), lifecycle.stop()]);
      await builders.stop();
      await events.close();
      redis.disconnect();
    },
  };
}
