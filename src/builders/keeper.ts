import { startDedicatedEngine, type BuilderEngine, type DedicatedEngine, type DedicatedEngineOptions } from './engine.js';

interface Kept {
  engine: DedicatedEngine;
  timer: NodeJS.Timeout;
  since: number;
  lastBuild: string;
}

/**
 * Keeps a repository's cached dedicated engine running for `keepMs` after a build that ended
 * cleanly, so the repository's next build within that time skips the engine's start and stop.
 * Only engines on a repository's own cache data root are kept (their state is the repository's
 * anyway); an engine is only ever handed to a build of the same repository with the same limits,
 * egress policy and registries. Without cache every build still gets a fresh engine and data root.
 */
export class EngineKeeper {
  private readonly kept = new Map<string, Kept>();
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly keepMs: number,
    private readonly start: (opts: DedicatedEngineOptions) => Promise<DedicatedEngine> = startDedicatedEngine,
  ) {}

  /** The repository's kept engine when there is a live one for these options, else a new engine. */
  async acquire(opts: DedicatedEngineOptions): Promise<BuilderEngine> {
    const key = keyOf(opts);
    const kept = opts.cache ? this.kept.get(key) : undefined;
    if (kept) {
      this.kept.delete(key);
      clearTimeout(kept.timer);
      if (await kept.engine.alive()) {
        await kept.engine.adopt(opts.buildId);
        opts.log(`engine: this repository's engine, kept since build ${kept.lastBuild} (idle ${((Date.now() - kept.since) / 1000).toFixed(1)} s; repository cache)`);
        return this.lend(key, kept.engine, opts.buildId);
      }
      this.stop(kept.engine);
    }
    return this.lend(key, await this.start(opts), opts.buildId);
  }

  /** Stops every kept engine (and waits for those already stopping); later releases stop at once. */
  async close(): Promise<void> {
    this.closed = true;
    for (const [key, k] of this.kept) {
      clearTimeout(k.timer);
      this.kept.delete(key);
      this.stop(k.engine);
    }
    await Promise.all([...this.closing]);
  }

  private lend(key: string, engine: DedicatedEngine, buildId: string): BuilderEngine {
    return {
      docker: engine.docker,
      isolation: engine.isolation,
      egressRefusals: () => engine.egressRefusals(),
      close: async (reusable = false) => {
        if (!reusable || !engine.cached || this.keepMs <= 0 || this.closed || this.kept.has(key)) return engine.close();
        const timer = setTimeout(() => {
          if (this.kept.get(key)?.engine !== engine) return;
          this.kept.delete(key);
          this.stop(engine);
        }, this.keepMs);
        timer.unref();
        this.kept.set(key, { engine, timer, since: Date.now(), lastBuild: buildId });
      },
    };
  }

  private stop(engine: DedicatedEngine): void {
    // A failed stop leaves the slot to the reaper (its owner, this process, is then gone or it retries).
    const stopping = engine.close().catch(() => undefined);
    this.closing.add(stopping);
    void stopping.then(() => this.closing.delete(stopping));
  }
}

/** What an engine was started with: a kept engine only serves a build that would start an equal one. */
function keyOf(o: DedicatedEngineOptions): string {
  return JSON.stringify([o.root, o.repo, o.memoryBytes ?? null, o.cpus ?? null, o.insecureRegistries ?? [], o.egress ?? null, o.protect ?? [], o.dockerdPath ?? null]);
}
