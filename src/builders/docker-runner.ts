import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import {
  BuildTimeout,
  NonRetryableBuildError,
  RetryableBuildError,
  type BuildLog,
  type BuildOutcome,
  type BuildRunner,
} from '../queue/index.js';
import { keyPrefixes, RedisLock, type BuildRecord } from '../store/index.js';
import { packContext } from './context.js';
import { sharedEngine, startDedicatedEngine, type BuilderEngine } from './engine.js';
import { BaseImageSeed } from './seed.js';
import { EngineKeeper } from './keeper.js';
import { BuildError } from './errors.js';
import { removeTree, selfOwner, writeJson } from './host.js';
import { buildersRoot, runsDir } from './paths.js';
import { buildOnEngine, pushFromEngine } from './image.js';
import { RegistryClient, parseImage, type RegistryCredentials } from './registry.js';
import { ReuseIndex, inputKey } from './reuse.js';
import { scrub } from './secrets.js';
import { fetchSource } from './source.js';
import { narrowPolicy, type EgressPolicy, type Endpoint } from './egress.js';

/** A repository's builder settings (from its config's `builder` and `source` sections). */
export interface RepoBuildSettings {
  isolation: 'dedicated' | 'shared';
  timeoutMs: number;
  memoryBytes?: number;
  cpus?: number;
  /** `builder.network`: `none` takes a dedicated build off every network, whatever the operator allows. */
  network: 'default' | 'none';
  /** `source.url`: overrides the webhook's clone URL. */
  sourceUrl?: string;
}

export interface DockerBuildRunnerOptions {
  /** Reuse index and push locks. */
  redis: Redis;
  /** The configured engine (DOCKER_HOST): shared builds run here. */
  docker: Docker;
  /** slipway's data dir; builders keep everything under `<dataDir>/builders`. */
  dataDir: string;
  /** The repository's builder settings; null/undefined means the defaults. */
  settingsFor?: (repo: string) => Promise<Partial<RepoBuildSettings> | null | undefined>;
  /** Registry credentials by registry host (`127.0.0.1:5000`); never logged or recorded. */
  registryCredentials?: Record<string, RegistryCredentials>;
  /** Registries spoken to over plain http besides loopback ones. */
  insecureRegistries?: readonly string[];
  /**
   * A repository's config may ask for `builder.isolation: shared` (SLIPWAY_ALLOW_SHARED_BUILDS);
   * without this such builds fail. `defaults` set by the operator are not affected.
   */
  allowSharedBuilds?: boolean;
  /** What RUN steps of dedicated builds may reach (SLIPWAY_BUILD_EGRESS); default public. */
  egress?: EgressPolicy;
  /** slipway's own endpoints (Redis, API, registry): never reachable from a build. */
  protect?: readonly Endpoint[];
  /** Token for private GitHub clones over https. */
  githubToken?: string;
  /**
   * How long a repository's cached dedicated engine is kept after a build for its next build
   * (SLIPWAY_BUILDER_KEEP); 0, the default here, stops every engine when its build ends.
   */
  keepEngineMs?: number;
  /**
   * SLIPWAY_BASE_IMAGES: pulled once into a seed (`prepareBaseImages`) that new data roots of
   * dedicated engines start from, so a repository's first build does not pull them.
   */
  baseImages?: readonly string[];
  /** Defaults when the repository config says nothing: dedicated, 30 min. */
  defaults?: Partial<RepoBuildSettings>;
  clock?: () => Date;
}

const DEFAULTS: RepoBuildSettings = { isolation: 'dedicated', timeoutMs: 30 * 60_000, network: 'default' };

/**
 * The BuildRunner: fetch the commit, build it on a fresh dedicated engine (or the shared one)
 * with BuildKit, push every tag, answer the manifest digest. Equal inputs to an earlier succeeded
 * build are not rebuilt: its manifest gets the new tags registry-side.
 */
export class DockerBuildRunner implements BuildRunner {
  private readonly registry: RegistryClient;
  private readonly reuse: ReuseIndex;
  private readonly clock: () => Date;
  private readonly keeper: EngineKeeper;
  private readonly seed: BaseImageSeed;

  constructor(private readonly opts: DockerBuildRunnerOptions) {
    this.keeper = new EngineKeeper(opts.keepEngineMs ?? 0);
    this.seed = new BaseImageSeed({
      root: buildersRoot(opts.dataDir),
      images: opts.baseImages ?? [],
      start: startDedicatedEngine,
      engine: { insecureRegistries: opts.insecureRegistries, egress: { kind: 'none' }, protect: opts.protect ?? [] },
      credentialsFor: (host) => opts.registryCredentials?.[host],
      log: () => undefined,
    });
    this.registry = new RegistryClient({
      credentialsFor: (host) => opts.registryCredentials?.[host],
      insecure: opts.insecureRegistries,
    });
    this.reuse = new ReuseIndex(opts.redis);
    this.clock = opts.clock ?? (() => new Date());
  }

  /**
   * Pulls SLIPWAY_BASE_IMAGES into a new seed for new data roots (a worker does this when it
   * starts and then hourly); until the first one is ready, builds pull their base images themselves.
   */
  async prepareBaseImages(): Promise<{ version: string; ms: number } | null> {
    return (this.opts.baseImages ?? []).length > 0 ? this.seed.refresh() : null;
  }

  /** Stops the engines kept for next builds. */
  async close(): Promise<void> {
    await this.keeper.close();
  }

  async run(build: BuildRecord, ctx: { signal: AbortSignal; log: BuildLog }): Promise<BuildOutcome> {
    let settings: RepoBuildSettings;
    try {
      const own = (await this.opts.settingsFor?.(build.repo)) ?? {};
      if (own.isolation === 'shared' && !this.opts.allowSharedBuilds) {
        throw new BuildError('context_invalid', `builder.isolation: shared is not allowed on this slipway: builds run on dedicated engines (the operator allows shared ones with SLIPWAY_ALLOW_SHARED_BUILDS=true)`);
      }
      settings = { ...DEFAULTS, ...this.opts.defaults, ...own };
    } catch (err) {
      throw this.failure(err, ctx.signal);
    }
    const ac = new AbortController();
    const onAbort = () => ac.abort(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new BuildTimeout(settings.timeoutMs)), settings.timeoutMs);
    const cleanups: (() => Promise<void>)[] = [];
    try {
      return await this.attempt(build, settings, ac.signal, ctx.log, cleanups);
    } catch (err) {
      throw this.failure(err, ac.signal);
    } finally {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      ctx.log.step('clean up');
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((err: unknown) => ctx.log.line(`cleanup: ${(err as Error).message}`));
      }
    }
  }

  private async attempt(
    build: BuildRecord,
    settings: RepoBuildSettings,
    signal: AbortSignal,
    log: BuildLog,
    cleanups: (() => Promise<void>)[],
  ): Promise<BuildOutcome> {
    if (build.tags.length === 0) throw new BuildError('context_invalid', 'the build has no tags');
    const key = inputKey(build);
    const earlier = await this.reuse.get(key);
    if (earlier) {
      log.step(`reuse image of build ${earlier.buildId}`);
      const digest = await this.retag(build.image, earlier.digest, build.tags, log);
      if (digest) return { digest };
      await this.reuse.forget(key);
    }

    const secrets = [this.opts.githubToken, ...Object.values(this.opts.registryCredentials ?? {}).map((c) => c.password)];
    const say = (line: string) => log.line(scrub(line, secrets));
    const url = settings.sourceUrl ?? build.cloneUrl;
    if (!url) throw new BuildError('source_invalid', 'no clone URL: the push carried none and the config has no source.url');

    const workspace = path.join(runsDir(this.opts.dataDir), build.id);
    await mkdir(workspace, { recursive: true });
    await writeJson(path.join(workspace, 'run.json'), { owner: await selfOwner(), buildId: build.id, localRefs: [] });
    cleanups.push(() => removeTree(workspace));

    // The source fetch and a dedicated engine's start overlap: both take a few hundred ms.
    log.step('fetch source');
    const src = path.join(workspace, 'src');
    const fetched = fetchSource({ url, sha: build.sha, dir: src, repo: build.repo, githubToken: this.opts.githubToken, signal, log: say });
    if (settings.isolation === 'dedicated') log.step('start dedicated engine');
    const starting: Promise<BuilderEngine> =
      settings.isolation === 'dedicated'
        ? this.keeper.acquire({
            root: buildersRoot(this.opts.dataDir),
            buildId: build.id,
            repo: build.repo,
            cache: build.cache,
            memoryBytes: settings.memoryBytes,
            cpus: settings.cpus,
            insecureRegistries: this.opts.insecureRegistries,
            egress: narrowPolicy(this.opts.egress ?? { kind: 'public' }, settings.network),
            protect: this.opts.protect ?? [],
            seed: await this.seed.current(),
            log: say,
          })
        : Promise.resolve(sharedEngine(this.opts.docker));
    const started = starting.then((engine) => {
      // An engine that ended its build without being aborted may serve the repository's next build.
      cleanups.push(() => engine.close(!signal.aborted));
      return engine;
    });
    try {
      await fetched;
    } finally {
      // Whatever happened to the fetch, a started engine is registered for cleanup before we go on.
      await started.catch(() => undefined);
    }
    const engine = await started;
    signal.throwIfAborted();

    await this.registry.checkPush(build.image);
    signal.throwIfAborted();

    log.step(`build ${build.context}/${build.dockerfile}`);
    const context = await packContext(src, build.context, build.dockerfile);
    const [firstTag, ...moreTags] = build.tags as [string, ...string[]];
    // On the shared engine a private local tag keeps concurrent builds of one image apart.
    const localRef = engine.isolation === 'shared' ? `${build.image}:slipway-build-${build.id}` : `${build.image}:${firstTag}`;
    const localRefs = [localRef];
    await writeJson(path.join(workspace, 'run.json'), { owner: await selfOwner(), buildId: build.id, localRefs });
    cleanups.push(() => this.untag(engine.docker, localRefs));
    const imageId = await this.reportingRefusals(engine, say, () => buildOnEngine(
      engine.docker,
      context.tar,
      {
        ref: localRef,
        dockerfile: context.dockerfile,
        buildArgs: build.build_args,
        labels: {
          'org.opencontainers.image.source': sourceLabel(build.repo, url),
          'org.opencontainers.image.revision': build.sha,
          'org.opencontainers.image.created': this.clock().toISOString(),
          'io.slipway.build': build.id,
        },
        cache: build.cache,
        target: build.target,
        memoryBytes: settings.memoryBytes,
        cpus: settings.cpus,
        signal,
      },
      { step: (name) => log.step(name), line: say },
    ));
    say(`built ${imageId}`);
    signal.throwIfAborted();

    log.step(`push ${build.image}:${firstTag}`);
    const { registry } = parseImage(build.image);
    const credentials = this.opts.registryCredentials?.[registry];
    const digest = await this.pushTag(engine, build.image, localRef, firstTag, credentials, registry, signal, say, localRefs, build.id);
    say(`pushed ${build.image}:${firstTag}@${digest}`);
    if (moreTags.length > 0) {
      log.step(`tag ${moreTags.join(', ')}`);
      await this.putTags(build.image, digest, moreTags, say);
    }
    await this.reuse.set(key, { digest, buildId: build.id });
    return { digest };
  }

  /**
   * Runs the engine build, then says once in the log what the egress policy refused meanwhile; a
   * failed step's reason starts with the refusal, so a blocked download does not read as a bare error.
   */
  private async reportingRefusals(engine: BuilderEngine, say: (line: string) => void, build: () => Promise<string>): Promise<string> {
    const refusals = async () => {
      const sentence = await engine.egressRefusals().catch(() => null);
      if (sentence) say(sentence);
      return sentence;
    };
    let imageId: string;
    try {
      imageId = await build();
    } catch (err) {
      const sentence = await refusals();
      if (sentence && err instanceof BuildError) throw new BuildError(err.code, `${sentence}; ${err.message}`, err.retryable);
      throw err;
    }
    await refusals();
    return imageId;
  }

  /** Pushes the image under `tag`; on the shared engine the short-lived public tag is held under a lock. */
  private async pushTag(
    engine: BuilderEngine,
    image: string,
    localRef: string,
    tag: string,
    credentials: RegistryCredentials | undefined,
    registry: string,
    signal: AbortSignal,
    say: (line: string) => void,
    localRefs: string[],
    buildId: string,
  ): Promise<string> {
    if (engine.isolation === 'dedicated') return pushFromEngine(engine.docker, image, tag, credentials, registry, signal, say);
    // One push of a tag at a time on the shared engine: the tag is the engine's, not this build's.
    const lock = new RedisLock(this.opts.redis, `${keyPrefixes.builders}pushlock:${image}:${tag}`, buildId);
    await lock.take(120_000, { everyMs: 100, signal });
    try {
      await engine.docker.getImage(localRef).tag({ repo: image, tag });
      localRefs.push(`${image}:${tag}`);
      return await pushFromEngine(engine.docker, image, tag, credentials, registry, signal, say);
    } finally {
      await this.untag(engine.docker, [`${image}:${tag}`]);
      localRefs.pop();
      await lock.release();
    }
  }

  /** Registry-side tagging: the manifest of `digest` is stored again under each tag. */
  private async putTags(image: string, digest: string, tags: string[], say: (line: string) => void): Promise<void> {
    const manifest = await this.registry.getManifest(image, digest);
    if (!manifest) throw new BuildError('push_failed', `registry lost ${image}@${digest} while tagging`, true);
    for (const tag of tags) {
      await this.registry.putManifest(image, tag, manifest);
      say(`tagged ${image}:${tag}@${digest}`);
    }
  }

  /** Gives an earlier build's manifest the new tags; null when the registry no longer has it. */
  private async retag(image: string, digest: string, tags: string[], log: BuildLog): Promise<string | null> {
    const manifest = await this.registry.getManifest(image, digest);
    if (!manifest) {
      log.line(`${image}@${digest} is no longer in the registry; building again`);
      return null;
    }
    for (const tag of tags) {
      await this.registry.putManifest(image, tag, manifest);
      log.line(`tagged ${image}:${tag}@${digest}`);
    }
    return digest;
  }

  /** Removes local tags (never forced: an image a container or another tag uses stays). */
  private async untag(docker: Docker, refs: readonly string[]): Promise<void> {
    for (const ref of refs) {
      await docker
        .getImage(ref)
        .remove({ noprune: false })
        .catch(() => undefined);
    }
  }

  /** Maps what went wrong to the lanes' typed errors, with a one-line reason. */
  private failure(err: unknown, signal: AbortSignal): Error {
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      return reason instanceof Error ? reason : new NonRetryableBuildError('build aborted', 'cancelled');
    }
    if (err instanceof BuildError) {
      return err.retryable ? new RetryableBuildError(err.message, err.code) : new NonRetryableBuildError(err.message, err.code);
    }
    const message = scrub((err as Error)?.message ?? String(err), [this.opts.githubToken]);
    return new RetryableBuildError(`builder error: ${message.replace(/\s+/g, ' ')}`, 'builder_error');
  }
}

/** `org.opencontainers.image.source`: the repository's web address for GitHub, else the clone URL without credentials. */
function sourceLabel(repo: string, url: string): string {
  if (/^https:\/\/github\.com\//.test(url) || /^git@github\.com:/.test(url)) return `https://github.com/${repo}`;
  return scrub(url).replace(/\.git$/, '');
}
