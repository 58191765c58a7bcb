import type { Redis } from 'ioredis';
import { keys } from './keys.js';

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

const CLAIM = '{"claim":true}';
/** A claim outlives a slow decision but not a crash: GitHub's redelivery then works again. */
const CLAIM_TTL_S = 120;
const LIST_CAP = 1000;

/**
 * Delivery ids are the idempotency key: `claim` takes the id (SET NX) before anything is queued,
 * `record` replaces the claim with the decision, kept for the dedupe TTL (≥ 7 days).
 */
export class DeliveryStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
  ) {}

  /** true when this delivery id is new; false when it was seen (or is being decided) already. */
  async claim(id: string): Promise<boolean> {
    return (await this.redis.set(keys.delivery(id), CLAIM, 'EX', CLAIM_TTL_S, 'NX')) === 'OK';
  }

  /** Gives the claim back after a failure, so a redelivery is decided afresh. */
  async release(id: string): Promise<void> {
    await this.redis.eval(
      `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
      1,
      keys.delivery(id),
      CLAIM,
    );
  }

  async record(decision: DeliveryDecision): Promise<void> {
    const json = JSON.stringify(decision);
    const tx = this.redis
      .multi()
      .set(keys.delivery(decision.deliveryId), json, 'PX', this.ttlMs)
      .lpush(keys.deliveries, json)
      .ltrim(keys.deliveries, 0, LIST_CAP - 1);
    const { repo, ref, sha } = decision;
    if (repo && ref && sha && !/^0+$/.test(sha)) tx.hset(keys.heads(repo), ref, sha);
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('delivery decision not stored (transaction aborted)');
  }

  /** The sha of the last push seen for a ref, or null. */
  async headOf(repo: string, ref: string): Promise<string | null> {
    return this.redis.hget(keys.heads(repo), ref);
  }

  async get(id: string): Promise<DeliveryDecision | null> {
    const raw = await this.redis.get(keys.delivery(id));
    if (!raw || raw === CLAIM) return null;
    return JSON.parse(raw) as DeliveryDecision;
  }

  /** Newest first. */
  async list(limit: number): Promise<DeliveryDecision[]> {
    const rows = await this.redis.lrange(keys.deliveries, 0, limit - 1);
    return rows.map((raw) => JSON.parse(raw) as DeliveryDecision);
  }
}
