import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { builderSpec } from '../rules/index.js';
import type { BuildRecord, RepoStore } from '../store/index.js';
import { TERMINAL_BUILD_STATUSES } from '../store/index.js';
import { DockerBuildRunner, type RepoBuildSettings } from './docker-runner.js';
import { openBuildLog, type BuildLogWriter } from './log.js';
import { startReaper } from './reaper.js';
import type { RegistryCredentials } from './registry.js';
import type { EgressPolicy, Endpoint } from './egress.js';

export interface BuildersOptions {
  redis: Redis;
  /** The configured engine (DOCKER_HOST). */
  docker: Docker;
  dataDir: string;
  repos: Pick<RepoStore, 'get'>;
  registryCredentials?: Record<string, RegistryCredentials>;
  insecureRegistries?: readonly string[];
  /** The operator's egress policy for dedicated builds (default public). */
  egress?: EgressPolicy;
  /** slipway's own endpoints, never reachable from a build. */
  protect?: readonly Endpoint[];
  githubToken?: string;
  /** SLIPWAY_ALLOW_SHARED_BUILDS: repositories may build on the shared engine. */
  allowSharedBuilds?: boolean;
  /** SLIPWAY_BUILDER_KEEP: how long a repository's cached engine waits for its next build. */
  keepEngineMs?: number;
  /** SLIPWAY_BASE_IMAGES: pulled into a seed for new data roots at start, then every `seedIntervalMs`. */
  baseImages?: readonly string[];
  seedIntervalMs?: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  reapIntervalMs?: number;
}

/**
 * What a worker process needs of the builders: the runner, a Redis log per build (`openLog`, closed
 * with its final status by `onBuildChange`), and the reaper (at `start()`, then on a timer).
 */
export function createBuilders(o: BuildersOptions) {
  const open = new Map<string, BuildLogWriter>();
  const settingsFor = async (repo: string): Promise<Partial<RepoBuildSettings> | null> => {
    const stored = await o.repos.get(repo);
    if (!stored) return null;
    const config = stored.config;
    const spec = builderSpec(config);
    return {
      isolation: spec.isolation,
      timeoutMs: spec.timeoutMs,
      ...(spec.memoryBytes ? { memoryBytes: spec.memoryBytes } : {}),
      ...(spec.cpus ? { cpus: spec.cpus } : {}),
      network: spec.network,
      ...(config.source?.url ? { sourceUrl: config.source.url } : {}),
    };
  };
  const runner = new DockerBuildRunner({
    redis: o.redis,
    docker: o.docker,
    dataDir: o.dataDir,
    settingsFor,
    ...(o.registryCredentials ? { registryCredentials: o.registryCredentials } : {}),
    ...(o.insecureRegistries ? { insecureRegistries: o.insecureRegistries } : {}),
    ...(o.egress ? { egress: o.egress } : {}),
    ...(o.protect ? { protect: o.protect } : {}),
    ...(o.githubToken ? { githubToken: o.githubToken } : {}),
    ...(o.keepEngineMs !== undefined ? { keepEngineMs: o.keepEngineMs } : {}),
    ...(o.baseImages ? { baseImages: o.baseImages } : {}),
    allowSharedBuilds: o.allowSharedBuilds ?? false,
  });
  let reaper: ReturnType<typeof startReaper> | undefined;
  let seeding: Promise<void> | undefined;
  let seedTimer: NodeJS.Timeout | undefined;
  const seed = () => {
    seeding ??= runner
      .prepareBaseImages()
      .then((done) => {
        if (done) o.log.info({ part: 'builders', ms: done.ms, seed: done.version }, `base images ready for new data roots: ${o.baseImages!.join(', ')}`);
      })
      .catch((err: Error) => o.log.warn({ err: err.message }, 'base images not seeded: new data roots pull them'))
      .finally(() => (seeding = undefined));
  };
  return {
    runner,
    openLog(record: BuildRecord): BuildLogWriter {
      const writer = openBuildLog(o.redis, record.id);
      open.set(record.id, writer);
      return writer;
    },
    /** Closes a build's log with its final status once the lanes have recorded it. */
    onBuildChange(record: BuildRecord): void {
      const writer = open.get(record.id);
      if (!writer) return;
      if (record.status === 'queued') {
        // Handed back to its lane: the next attempt opens the log again.
        open.delete(record.id);
        void writer.flush();
      } else if (TERMINAL_BUILD_STATUSES.includes(record.status)) {
        open.delete(record.id);
        const why = record.status === 'superseded' && record.supersededBy ? `by build ${record.supersededBy}` : record.error;
        writer.end(record.status, why).catch((err: Error) => o.log.warn({ err: err.message, build: record.id }, 'build log not closed'));
      }
    },
    async start(): Promise<void> {
      reaper = startReaper({
        dataDir: o.dataDir,
        docker: o.docker,
        log: (message) => o.log.info({ part: 'reaper' }, message),
        ...(o.reapIntervalMs ? { intervalMs: o.reapIntervalMs } : {}),
      });
      await reaper.first.catch((err: Error) => o.log.warn({ err: err.message }, 'reaper failed at start'));
      // In the background: builds taken meanwhile pull their base images as without a seed.
      if ((o.baseImages ?? []).length > 0) {
        seed();
        seedTimer = setInterval(seed, o.seedIntervalMs ?? 3_600_000);
        seedTimer.unref();
      }
    },
    /** Resolves once a base image seed in progress has ended (tests, benchmarks). */
    async seeded(): Promise<void> {
      await seeding;
    },
    async stop(): Promise<void> {
      clearInterval(seedTimer);
      await seeding;
      await reaper?.stop();
      await runner.close();
      await Promise.all([...open.values()].map((w) => w.flush()));
    },
  };
}

export type Builders = ReturnType<typeof createBuilders>;
