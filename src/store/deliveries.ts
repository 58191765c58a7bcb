import type { Redis } from 'ioredis';
import { keys } from './keys.js';
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

const CLAIM = '{"claim":true}';
/** A claim outlives a slow decision but not a crash: GitHub's redelivery then works again. */
const CLAIM_TTL_S = 120;
const LIST_CAP = 1000;

// KEYS: delivery key, deliveries list, heads hash ('' when the push has no head to remember)
// ARGV: decision JSON, ttl ms, list cap, ref, sha
const RECORD = new LuaScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
if KEYS[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
return 1`);

// Like RECORD, for a delivery whose builds are being queued in the same round trip (sent right
// after the lanes' submit on the same connection): the decision is recorded only when its first
// build exists, with the ids that submission superseded (its `_superseded` field) as `superseded`.
// KEYS: delivery key, deliveries list, heads hash or '', the first build's record key
// ARGV: decision JSON without `superseded`, ttl ms, list cap, ref, sha. Answers that JSON list, or nil.
const RECORD_QUEUED = new LuaScript(`
local sup = redis.call('HGET', KEYS[4], '_superseded')
if not sup then return false end
local decision = string.sub(ARGV[1], 1, -2) .. ',"superseded":' .. sup .. '}'
redis.call('SET', KEYS[1], decision, 'PX', ARGV[2])
redis.call('LPUSH', KEYS[2], decision)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
if KEYS[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
return sup`);

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
    const [k1, k2, k3, ref, sha] = this.recordKeys(decision);
    // One script (one command, so auto-pipelining batches it with other requests' commands).
    await RECORD.run(this.redis, [k1, k2, k3], [JSON.stringify(decision), this.ttlMs, LIST_CAP, ref, sha]);
  }

  /**
   * Records an accepted decision in the same round trip as queueing its builds: call it in the same
   * tick as, and after, the lanes' submit on the same connection. Answers the superseded ids stored
   * (set on `decision`), or null when the first build was not there (nothing recorded: the caller
   * records with `record` once the submission has answered).
   */
  async recordQueued(decision: DeliveryDecision, firstBuildKey: string): Promise<string[] | null> {
    const { superseded: _, ...rest } = decision;
    const [k1, k2, k3, ref, sha] = this.recordKeys(decision);
    const sup = await RECORD_QUEUED.run(this.redis, [k1, k2, k3, firstBuildKey], [JSON.stringify(rest), this.ttlMs, LIST_CAP, ref, sha]);
    if (typeof sup !== 'string') return null;
    decision.superseded = JSON.parse(sup) as string[];
    return decision.superseded;
  }

  private recordKeys(decision: DeliveryDecision): [string, string, string, string, string] {
    const { repo, ref, sha } = decision;
    const head = repo && ref && sha && !/^0+$/.test(sha) ? [keys.heads(repo), ref, sha] : ['', '', ''];
    return [keys.delivery(decision.deliveryId), keys.deliveries, head[0]!, head[1]!, head[2]!];
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
