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
 * the same atomic step as the builds (src/queue `SubmitOptions.receipt`): the submission happens
 * only when `key` does not exist yet. Stored at `key` (for `ttlMs`) as `head` completed with
 * `,"superseded":[ids the submission superseded]}`, and `key` is pushed on `journal`; `mark` is one
 * hash field set along (the ref's last pushed sha).
 */
export interface Receipt {
  key: string;
  ttlMs: number;
  /** A JSON object's text without a `superseded` field and without its closing `}` (the script completes it). */
  head: string;
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
    // Every field but `superseded` (the script adds it), as one literal: cheaper to copy and encode
    // than a rest copy of the decision on the webhook's hot path.
    const head: Omit<DeliveryDecision, 'superseded'> = {
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
    };
    return {
      key: keys.delivery(d.deliveryId),
      ttlMs: this.ttlMs,
      head: JSON.stringify(head).slice(0, -1),
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
    const raw = await this.redis.get(keys.delivery(id));
    if (!raw) return null;
    return JSON.parse(raw) as DeliveryDecision;
  }

  /** Newest first; decisions past their TTL are left out. */
  async list(limit: number): Promise<DeliveryDecision[]> {
    const rows = await this.redis.lrange(keys.deliveries, 0, limit - 1);
    // The journal holds each decision's key; entries of older slipway builds hold the decision itself.
    const stored = rows.filter((row) => !row.startsWith('{'));
    const found = new Map<string, string | null>();
    if (stored.length > 0) (await this.redis.mget(stored)).forEach((raw, i) => found.set(stored[i]!, raw));
    const out: DeliveryDecision[] = [];
    for (const row of rows) {
      const raw = row.startsWith('{') ? row : found.get(row);
      if (raw) out.push(JSON.parse(raw) as DeliveryDecision);
    }
    return out;
  }
}
