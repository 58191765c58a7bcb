import { keyPrefixes } from '../store/index.js';

const { lane: LANE, lanes: LANES } = keyPrefixes;

/** Redis keys of the lanes (all under `slipway:lanes:` / `slipway:lane:`), and the BullMQ queue's place. */
export const laneKeys = {
  /** list per repository: ids of its builds waiting for a slot, oldest first */
  lanePrefix: LANE,
  lane: (repo: string) => `${LANE}${repo}`,
  /**
   * zset: the ring of repositories that have waiting work and room under their concurrency.
   * Score = running × 1e12 + turn: fewest running builds first, then whoever has waited longest
   * for a turn (a repository re-enters at the back after each turn).
   */
  ring: `${LANES}ring`,
  /** counter: the turn numbers of the ring */
  ringSeq: `${LANES}ring-seq`,
  /** hash repo → builds dispatched or running */
  running: `${LANES}running`,
  /** hash repo → its builder.concurrency (default 1) */
  concurrency: `${LANES}concurrency`,
  /** hash repo → "1" when a newer push also cancels that ref's running build */
  cancelSuperseded: `${LANES}cancel-superseded`,
  /** hash build id → JSON {job, repo, at}: builds holding a slot (dispatched to BullMQ, or running) */
  active: `${LANES}active`,
  /** set per repo+ref: ids of its builds still queued (not yet started) */
  refPrefix: `${LANES}ref:`,
  /** zset worker id → heartbeat expiry (ms) */
  workers: `${LANES}workers`,
  /** hash worker id → its slots */
  slots: `${LANES}slots`,
  /** pub/sub channel: JSON {id, reason: cancelled|superseded, by} */
  abortChannel: `${LANES}abort`,
} as const;

/** The one BullMQ work queue: it only ever holds builds that are about to run or running. */
export const WORK_QUEUE = { name: 'builds', prefix: keyPrefixes.bull } as const;
