/**
 * The one place that names every Redis key prefix of slipway; each part builds its own keys under
 * its prefix (the lanes: src/queue/keys.ts, build records: src/store/builds.ts, rollouts:
 * src/deploy/store.ts, builders: src/builders).
 */
export const keyPrefixes = {
  /** everything slipway keeps */
  root: 'slipway:',
  /** build records (`build:<id>`) and their logs (`build:<id>:log`) */
  build: 'slipway:build:',
  /** the indexes of build records */
  builds: 'slipway:builds',
  /** a repository's lane (`lane:<repo>`) */
  lane: 'slipway:lane:',
  /** the lanes' shared state: ring, slots, workers, refs */
  lanes: 'slipway:lanes:',
  /** BullMQ's own keys */
  bull: 'slipway:bull',
  /** deployments, their queue, locks and auto-deploy marks */
  deploy: 'slipway:deploy:',
  /** builders: push locks, the reuse index */
  builders: 'slipway:builders:',
  /** wake-up streams of log followers (one set per process) */
  logFollowers: 'slipway:log-followers:',
} as const;

/** Redis key layout of the records this folder owns; every key starts with `slipway:`. */
export const keys = {
  /** hash: owner/name → JSON StoredRepo */
  repos: 'slipway:repos',
  /** hash: owner/name → version of its stored config (written with `repos`; what a submission's guard checks) */
  repoVersions: 'slipway:repo-versions',
  /** hash: what a config claims (`service:<name>`, `port:<n>/<proto>`) → `<owner/name>\t<holder in words>` */
  claims: 'slipway:claims',
  /** set per repository: the claim fields it holds */
  claimsOf: (repo: string) => `slipway:claims-of:${repo.toLowerCase()}`,
  /** hash: owner/name → JSON RepoSettings (what the operator decides apart from the config) */
  repoSettings: 'slipway:repo-settings',
  /** hash: sha256(token) hex → JSON TokenInfo */
  tokens: 'slipway:tokens',
  /** hash: token name → sha256(token) hex (names are unique) */
  tokenNames: 'slipway:token-names',
  /** string per delivery: JSON DeliveryDecision (its presence makes a redelivery a duplicate) */
  delivery: (id: string) => `slipway:delivery:${id}`,
  /** string beside a decision (`delivery(id)`): JSON ids of the queued builds its submission superseded, when there were any */
  supersededOf: (deliveryKey: string) => `${deliveryKey}:superseded`,
  /** list, newest first, capped: the `delivery(id)` keys of the decisions (one past its TTL is skipped when read) */
  deliveries: 'slipway:deliveries',
  /** hash per repository: ref → sha of its last push (for builds by hand without a sha) */
  heads: (repo: string) => `slipway:heads:${repo.toLowerCase()}`,
  /** hash per repository: ref → `repository.pushed_at` (ms) of its newest accepted push (replays older than it build nothing) */
  pushed: (repo: string) => `slipway:pushed:${repo.toLowerCase()}`,
  /** stream of audit entries */
  audit: 'slipway:audit',
  /** pub/sub channel of build and deployment state changes, except those of builds that have not started */
  events: 'slipway:events',
  /**
   * pub/sub channel of the records of builds that have not started (queued, handed back, superseded
   * or cancelled while queued): the bulk of a busy intake's events, apart so listeners that follow
   * only runs (metrics) skip them
   */
  eventsQueued: 'slipway:events:queued',
} as const;
