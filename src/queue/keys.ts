/** Redis keys of the lanes (all under `slipway:lanes` / `slipway:lane:`), and the BullMQ queue's place. */
export const laneKeys = {
  /** list per repository: ids of its builds waiting for a slot, oldest first */
  lanePrefix: 'slipway:lane:',
  lane: (repo: string) => `slipway:lane:${repo}`,
  /**
   * zset: the ring of repositories that have waiting work and room under their concurrency.
   * Score = running × 1e12 + turn: fewest running builds first, then whoever has waited longest
   * for a turn (a repository re-enters at the back after each turn).
   */
  ring: 'slipway:lanes:ring',
  /** counter: the turn numbers of the ring */
  ringSeq: 'slipway:lanes:ring-seq',
  /** hash repo → builds dispatched or running */
  running: 'slipway:lanes:running',
  /** hash repo → its builder.concurrency (default 1) */
  concurrency: 'slipway:lanes:concurrency',
  /** hash repo → "1" when a newer push also cancels that ref's running build */
  cancelSuperseded: 'slipway:lanes:cancel-superseded',
  /** hash build id → JSON {job, repo, at}: builds holding a slot (dispatched to BullMQ, or running) */
  active: 'slipway:lanes:active',
  /** set per repo+ref: ids of its builds still queued (not yet started) */
  refPrefix: 'slipway:lanes:ref:',
  /** zset worker id → heartbeat expiry (ms) */
  workers: 'slipway:lanes:workers',
  /** hash worker id → its slots */
  slots: 'slipway:lanes:slots',
  /** pub/sub channel: JSON {id, reason: cancelled|superseded, by} */
  abortChannel: 'slipway:lanes:abort',
} as const;

/** The one BullMQ work queue: it only ever holds builds that are about to run or running. */
export const WORK_QUEUE = { name: 'builds', prefix: 'slipway:bull' } as const;
