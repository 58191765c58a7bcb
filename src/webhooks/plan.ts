import type { EvaluateOptions, Preview, RefEvent } from '../rules/index.js';
import type { BuildRecord, StoredRepo } from '../store/index.js';
import { toBuildRecords, type BuildOrigin } from './build-records.js';
import type { CompiledCache, RulesEngine } from './engine.js';

/** What a ref event leads to under a repository's stored rules: the records to queue, and their lane's settings. */
export interface BuildPlan {
  builds: BuildRecord[];
  skipped: Preview['skipped'];
  warnings: string[];
  lane: { concurrency: number; cancelSuperseded: boolean };
}

/**
 * The one way builds are planned, for a push (src/webhooks decide) and for a build by hand (the
 * API): the stored config compiled once per version, the rules evaluated for the event, one queued
 * record per planned build.
 */
export function planBuilds(
  rules: { engine: RulesEngine; cache: CompiledCache },
  stored: StoredRepo,
  event: RefEvent,
  origin: Pick<BuildOrigin, 'cloneUrl' | 'deliveryId' | 'trigger' | 'by' | 'at'>,
  opts: EvaluateOptions = {},
): BuildPlan {
  const compiled = rules.cache.get(stored.version, stored.config);
  const preview = rules.engine.evaluate(compiled, event, opts);
  const builds = toBuildRecords(preview.builds, {
    ...origin,
    repo: stored.repo,
    ref: event.ref,
    sha: event.sha,
    image: stored.config.image,
    warnings: preview.warnings,
  });
  return {
    builds,
    skipped: preview.skipped,
    warnings: preview.warnings,
    lane: { concurrency: compiled.builder.concurrency, cancelSuperseded: compiled.builder.cancelSuperseded },
  };
}
