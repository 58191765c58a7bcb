import { hash, randomBytes } from 'node:crypto';
import type { BuildRecord } from '../store/index.js';
import type { PlannedBuild } from '../rules/index.js';

/**
 * Build ids sort by creation time: 9 base-36 digits of milliseconds, then 8 random hex digits
 * (`mi3k2x0a1-9f3c2b7e`), so "newest first" is also "largest id first".
 */
export function newBuildId(at: Date): string {
  return `${at.getTime().toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
}

/**
 * The ids of a delivery's builds derive from its delivery id (`gh-<16 hex>-<n>`), so queueing the
 * same delivery twice (a redelivery after a crash between queueing and recording the decision)
 * is refused by the lanes as a duplicate instead of building twice.
 */
export function deliveryBuildId(deliveryId: string, index: number): string {
  return `gh-${hash('sha256', deliveryId).slice(0, 16)}-${index}`;
}

export interface BuildOrigin {
  repo: string;
  ref: string;
  sha: string;
  image: string;
  cloneUrl: string | null;
  deliveryId: string | null;
  trigger: BuildRecord['trigger'];
  by: string;
  warnings: string[];
  at: Date;
}

/** One queued build record (api.md fields plus src/store/records.ts extras) per planned build. */
export function toBuildRecords(planned: PlannedBuild[], o: BuildOrigin): BuildRecord[] {
  const queuedAt = o.at.toISOString();
  return planned.map((b, i) => ({
    id: o.deliveryId ? deliveryBuildId(o.deliveryId, i) : newBuildId(o.at),
    repo: o.repo,
    ref: o.ref,
    sha: o.sha,
    rules: b.rules,
    tags: b.tags,
    image: o.image,
    status: 'queued',
    digest: null,
    error: null,
    queuedAt,
    startedAt: null,
    finishedAt: null,
    deployments: [],
    context: b.context,
    dockerfile: b.dockerfile,
    build_args: b.build_args,
    cache: b.cache,
    target: b.target,
    deploy: b.deploy,
    cloneUrl: o.cloneUrl,
    deliveryId: o.deliveryId,
    trigger: o.trigger,
    by: o.by,
    supersededBy: null,
    warnings: o.warnings,
  }));
}
