import type { Redis } from 'ioredis';
import { keys } from './keys.js';
import type { VersionGuard } from './repos.js';
import { LuaScript } from './script.js';

/** What slipway decided about one GitHub delivery; every delivery leaves one. */
export interface DeliveryDecision {
  deliveryId: string;
  event: string;
  repo: string | null;
  ref: string | null;
  sha: string | null;
  receivedAt: string;
  /** `accepted` queued builds (maybe none); `ignored` built nothing on purpose. */
  outcome: 'accepted' | 'ignored' | 'ping';
  ignored: string | null;
  builds: string[];
  matched: { rules: string[]; tags: string[] }[];
  skipped: { rule: string; reason: string }[];
  warnings: string[];
  superseded: string[];
}

const LIST_CAP = 1000;

/**
 * The idempotency record of a request that queues builds, stored by the lanes' submit script in
 * the same atomic step as the builds (src/queue `SubmitOptions.receipt`): a set-if-new precondition,
 * the submission happens only when `key` does not exist yet, and then `value` is stored there (for
 * `ttlMs`) and `key` pushed on `journal`. The builds the submission superseded, known only inside
 * the script, are kept beside it (`keys.supersededOf(key)`); `mark` is one hash field set along
 * (the ref's last pushed sha).
 */
export interface Receipt {
  key: string;
  ttlMs: number;
  /** The decision's JSON, as readers get it (its `superseded` is filled in from beside it). */
  value: string;
  journal: { key: string; cap: number };
  mark: { key: string; field: string; value: string } | null;
  /**
   * The push's `repository.pushed_at` (ms) under its ref: the submission is refused (`replayed`)
   * when the ref's newest accepted push is later, else it becomes the ref's newest.
   */
  newest: { key: string; field: string; value: number } | null;
}

const RECORD_ONCE = LuaScript.fromFile(new URL('./lua/delivery-record-once.lua', import.meta.url));

/**
 * Delivery ids are the idempotency key, kept for the dedupe TTL (≥ 7 days): a decision that
 * queues builds is stored by the lanes together with its builds (`receipt`), any other with
 * `recordOnce`; either way a delivery id is decided once.
 */
export class DeliveryStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
  ) {}

  /**
   * Stores a decision that queues nothing, unless the delivery was seen before (`duplicate`) or
   * `guard` no longer holds (`stale`: decided with an outdated config); then nothing is stored.
   */
  async recordOnce(decision: DeliveryDecision, guard?: VersionGuard | null): Promise<'recorded' | 'duplicate' | 'stale'> {
    const head = this.head(decision);
    const done = await RECORD_ONCE.run(
      this.redis,
      [keys.delivery(decision.deliveryId), keys.deliveries, head?.key ?? '', guard?.key ?? ''],
      [JSON.stringify(decision), this.ttlMs, LIST_CAP, head?.field ?? '', head?.value ?? '', guard?.field ?? '', guard?.value ?? ''],
    );
    return done === 1 ? 'recorded' : done === 0 ? 'duplicate' : 'stale';
  }

  /** The receipt that stores `decision` along with the builds it queues (its `superseded` is filled in by the submission). */
  receipt(d: DeliveryDecision, pushedAt: number | null): Receipt {
    // One literal: cheaper to copy and encode than a rest copy of the decision on the webhook's hot path.
    const value: DeliveryDecision = {
      deliveryId: d.deliveryId,
      event: d.event,
      repo: d.repo,
      ref: d.ref,
      sha: d.sha,
      receivedAt: d.receivedAt,
      outcome: d.outcome,
      ignored: d.ignored,
      builds: d.builds,
      matched: d.matched,
      skipped: d.skipped,
      warnings: d.warnings,
      superseded: [],
    };
    return {
      key: keys.delivery(d.deliveryId),
      ttlMs: this.ttlMs,
      value: JSON.stringify(value),
      journal: { key: keys.deliveries, cap: LIST_CAP },
      mark: this.head(d),
      newest: d.repo && d.ref && pushedAt !== null ? { key: keys.pushed(d.repo), field: d.ref, value: pushedAt } : null,
    };
  }

  /** The ref's last pushed sha to remember (not for deleted refs). */
  private head({ repo, ref, sha }: DeliveryDecision): Receipt['mark'] {
    return repo && ref && sha && !/^0+$/.test(sha) ? { key: keys.heads(repo), field: ref, value: sha } : null;
  }

  /** The sha of the last push seen for a ref, or null. */
  async headOf(repo: string, ref: string): Promise<string | null> {
    return this.redis.hget(keys.heads(repo), ref);
  }

  async get(id: string): Promise<DeliveryDecision | null> {
    const key = keys.delivery(id);
    const [raw, superseded] = await this.redis.mget(key, keys.supersededOf(key));
    return raw ? decisionOf(raw, superseded ?? null) : null;
  }

  /** Newest first; decisions past their TTL are left out. */
  async list(limit: number): Promise<DeliveryDecision[]> {
    const rows = await this.redis.lrange(keys.deliveries, 0, limit - 1);
    // The journal holds each decision's key; entries of older slipway builds hold the decision itself.
    const stored = rows.filter((row) => !row.startsWith('{'));
    const found = new Map<string, [string | null, string | null]>();
    if (stored.length > 0) {
      const raws = await this.redis.mget(stored.flatMap((k) => [k, keys.supersededOf(k)]));
      stored.forEach((k, i) => found.set(k, [raws[2 * i] ?? null, raws[2 * i + 1] ?? null]));
    }
    const out: DeliveryDecision[] = [];
    for (const row of rows) {
      const [raw, superseded] = row.startsWith('{') ? [row, null] : (found.get(row) ?? [null, null]);
      if (raw) out.push(decisionOf(raw, superseded));
    }
    return out;
  }
}

/** A stored decision with the builds its submission superseded (kept beside it when there were any). */
function decisionOf(raw: string, superseded: string | null): DeliveryDecision {
  const decision = JSON.parse(raw) as DeliveryDecision;
  if (superseded) decision.superseded = JSON.parse(superseded) as string[];
  return decision;
}
