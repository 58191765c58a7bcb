import { sourceProblem, type SourcePolicy } from '../auth/index.js';
import type { BuildRecord, RepoStore, VersionGuard } from '../store/index.js';
import type { SkippedRule } from '../rules/index.js';
import { planBuilds } from './plan.js';
import type { CompiledCache, RulesEngine } from './engine.js';
import { skipMarker, type SourceEvent } from './source-event.js';

/** What one push leads to: builds to queue, or the reason nothing is built, and why each rule did (not) match. */
export interface Decision {
  /** owner/name as stored (or as pushed when unknown). */
  repo: string;
  ignored: string | null;
  builds: BuildRecord[];
  skipped: SkippedRule[];
  warnings: string[];
  /** The repository's builder settings the lanes need. */
  lane: { concurrency: number; cancelSuperseded: boolean };
  /** The decision holds while this does (the config it was made with is current); null for unknown repositories. */
  guard: VersionGuard | null;
}

/**
 * `fresh`: read the repository's config from Redis; otherwise the one this process read last may
 * be used, and the decision's `guard` lets its write refuse it when it was out of date.
 */
export type Decide = (event: SourceEvent, deliveryId: string, at: Date, opts?: { fresh?: boolean }) => Promise<Decision>;

/** A decision to build nothing, and why. */
function ignore(repo: string, reason: string, guard: VersionGuard | null): Decision {
  return { repo, ignored: reason, builds: [], skipped: [], warnings: [], lane: { concurrency: 1, cancelSuperseded: false }, guard };
}

/** Turns a push into builds using the repository's stored, compiled rules. */
export function createDecider(o: {
  repos: Pick<RepoStore, 'get' | 'recent' | 'guard'>;
  engine: RulesEngine;
  cache: CompiledCache;
  /** Where builds may fetch from (SLIPWAY_SOURCE_ALLOW); a push whose source is elsewhere builds nothing. */
  sources: SourcePolicy;
  /** SLIPWAY_REPLAY_WINDOW: a push that GitHub says happened longer ago than this is a replay, and builds nothing. */
  replayWindowMs: number;
}): Decide {
  return async (event, deliveryId, at, opts = {}) => {
    const stored = await (opts.fresh ? o.repos.get(event.repository) : o.repos.recent(event.repository));
    if (!stored) return ignore(event.repository, `unknown repository ${event.repository}`, null);
    const guard = o.repos.guard(stored);
    if (event.deleted) return ignore(stored.repo, 'deleted ref', guard);
    if (!o.engine.isValidGitRefName(event.ref)) return ignore(stored.repo, 'invalid ref', guard);
    if (event.source === null) return ignore(stored.repo, `${event.ref} is neither a branch nor a tag`, guard);
    // A captured delivery re-sent under a new id carries its old pushed_at: the signature covers it.
    if (event.pushedAt !== null && at.getTime() - event.pushedAt > o.replayWindowMs) {
      return ignore(stored.repo, `replayed: pushed at ${new Date(event.pushedAt).toISOString()}, longer ago than the ${o.replayWindowMs / 60_000} min replay window (SLIPWAY_REPLAY_WINDOW)`, guard);
    }
    const marker = skipMarker(event.headCommitMessage);
    if (marker) return ignore(stored.repo, `${marker} in the head commit message`, guard);

    const config = stored.config;
    // The payload's clone URL is what the sender says: only the repository's own (or its config's) is fetched.
    const cloneUrl = config.source?.url ?? event.cloneUrl;
    const problem = cloneUrl === null ? null : sourceProblem(o.sources, cloneUrl, stored.repo);
    if (problem) return ignore(stored.repo, `source refused: ${problem}`, guard);
    const plan = planBuilds(
      { engine: o.engine, cache: o.cache },
      stored,
      { ref: event.ref, sha: event.sha, changed: event.changed ?? null, ...(event.defaultBranch ? { defaultBranch: event.defaultBranch } : {}) },
      { cloneUrl, deliveryId, trigger: 'webhook', by: `github:${event.pusher}`, at },
    );
    return { repo: stored.repo, ignored: null, builds: plan.builds, skipped: plan.skipped, warnings: plan.warnings, lane: plan.lane, guard };
  };
}
