import type { Redis } from 'ioredis';
import { keyPrefixes } from './keys.js';
import { LuaScript } from './script.js';
import { BuildRecord, BuildStatus } from './records.js';

/**
 * Build records in Redis.
 *
 * Layout (every key under `slipway:`):
 * - `slipway:build:<id>`            hash: `doc` = the JSON of the record's fields that never change
 *                                   once it is queued (id, repo, ref, sha, tags, …); then one field per
 *                                   field that changes (`status`, `digest`, `error`, `startedAt`,
 *                                   `finishedAt`, `deployments`, `supersededBy`), each JSON-encoded, so
 *                                   Lua scripts change them atomically without re-encoding the record;
 *                                   an absent one has its default (null, or [] for deployments).
 *                                   Internal fields start with `_` and never reach readers: `_seq`
 *                                   (index score), `_dispatches` and `_attempts` (counters, absent
 *                                   until the first), `_owner`, `_abort`. The scripts read a record's
 *                                   repo, ref and rules from `doc` (records of earlier slipway builds
 *                                   also carry copies in `_repo`, `_ref`, `_rules`, now unused).
 * - `slipway:builds:seq`            counter: a global submission sequence, the score of every index
 *                                   (newest first = highest score, no clock ties)
 * - `slipway:builds`                zset of all builds
 * - `slipway:builds:repo:<repo>`    zset per repository
 * - `slipway:builds:status:<s>`     zset per status; moved in the same script that changes `status`
 *
 * Records are written and their status changed only by the lane scripts (src/queue), whose
 * compare-and-set on `status` makes every transition happen exactly once.
 */
export const buildKeys = {
  prefix: keyPrefixes.build,
  record: (id: string) => `${keyPrefixes.build}${id}`,
  /** stream of a build's log (src/builders) */
  log: (id: string) => `${keyPrefixes.build}${id}:log`,
  seq: `${keyPrefixes.builds}:seq`,
  all: keyPrefixes.builds,
  repoPrefix: `${keyPrefixes.builds}:repo:`,
  byRepo: (repo: string) => `${keyPrefixes.builds}:repo:${repo}`,
  statusPrefix: `${keyPrefixes.builds}:status:`,
  byStatus: (status: BuildStatus) => `${keyPrefixes.builds}:status:${status}`,
} as const;

/** A record's fields in schema order (what readers see; internal `_` fields are not among them). */
export const BUILD_FIELDS = Object.keys(BuildRecord.shape) as (keyof BuildRecord)[];

/** The fields that change after a build is queued, each stored on its own, with the JSON of its default when absent. */
export const CHANGING_BUILD_FIELDS = {
  status: null,
  digest: 'null',
  error: 'null',
  startedAt: 'null',
  finishedAt: 'null',
  deployments: '[]',
  supersededBy: 'null',
} as const satisfies Partial<Record<keyof BuildRecord, string | null>>;

const CHANGING = Object.entries(CHANGING_BUILD_FIELDS) as [keyof BuildRecord, string | null][];

type FixedField = Exclude<keyof BuildRecord, keyof typeof CHANGING_BUILD_FIELDS>;

/**
 * The fields of `doc`, in schema order, as one object literal (its type makes it list every fixed
 * field, and only those): JSON.stringify takes such a literal about twice as fast as an object
 * filled field by field, which mattered on the webhook's hot path.
 */
function fixedFields(r: BuildRecord): { [K in FixedField]: BuildRecord[K] } {
  return {
    id: r.id,
    repo: r.repo,
    ref: r.ref,
    sha: r.sha,
    rules: r.rules,
    tags: r.tags,
    image: r.image,
    queuedAt: r.queuedAt,
    context: r.context,
    dockerfile: r.dockerfile,
    build_args: r.build_args,
    cache: r.cache,
    target: r.target,
    deploy: r.deploy,
    cloneUrl: r.cloneUrl,
    deliveryId: r.deliveryId,
    trigger: r.trigger,
    by: r.by,
    warnings: r.warnings,
  };
}

/** A new record as flat hash arguments: `[field, value, …]` (see the layout above). */
export function encodeBuild(record: BuildRecord): string[] {
  const out = ['doc', JSON.stringify(fixedFields(record))];
  for (const [f, absent] of CHANGING) {
    const v = record[f];
    // A new record's changing fields are mostly at their defaults: told apart without encoding them.
    if (v === null ? absent === 'null' : Array.isArray(v) && v.length === 0 && absent === '[]') continue;
    const json = JSON.stringify(v);
    if (json !== absent) out.push(f, json);
  }
  return out;
}

type ChangingField = keyof typeof CHANGING_BUILD_FIELDS;

/** A record's fields in schema order: the fixed ones from `doc`, the changing ones from `changed` (undefined = its default). */
function assemble(doc: Record<string, unknown>, changed: (f: ChangingField) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of BUILD_FIELDS) {
    if (f in CHANGING_BUILD_FIELDS) {
      const k = f as ChangingField;
      const v = changed(k);
      const absent = CHANGING_BUILD_FIELDS[k];
      if (v !== undefined) out[f] = v;
      else if (absent !== null) out[f] = JSON.parse(absent);
    } else if (f in doc) {
      out[f] = doc[f];
    }
  }
  return out;
}

/** The record's fields (schema order) of a stored hash; null when there is no record. */
function readFields(hash: Record<string, string>): Record<string, unknown> | null {
  if (!hash || hash.doc === undefined) return null;
  return assemble(JSON.parse(hash.doc) as Record<string, unknown>, (f) => (hash[f] === undefined ? undefined : JSON.parse(hash[f])));
}

/**
 * A build event as the lane scripts publish it in bulk (src/queue submit): the record's stored
 * strings joined as they are, `{"type":"build","doc":{…fixed fields},"status":…}` with only the
 * changing fields the hash has (the others are at their defaults).
 */
export type PackedBuildEvent = { type: 'build'; doc: Record<string, unknown> } & Partial<Record<ChangingField, unknown>>;

/** The record a packed event carries (schema order, defaults filled in). */
export function unpackBuildEvent(e: PackedBuildEvent): BuildRecord {
  return assemble(e.doc, (f) => e[f]) as BuildRecord;
}

/** The record of a hash read with HGETALL; null when the hash is empty (no such build). */
export function decodeBuild(hash: Record<string, string>): BuildRecord | null {
  const raw = readFields(hash);
  return raw ? BuildRecord.parse(raw) : null;
}

/**
 * A record from a flat HGETALL reply (`[field, value, …]`) that a lane script wrote itself within
 * the same call: decoded without the zod pass of decodeBuild (the hot path of a webhook). Null
 * when empty.
 */
export function decodeStoredBuild(flat: string[]): BuildRecord | null {
  if (!flat || flat.length === 0) return null;
  const hash: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
  return readFields(hash) as BuildRecord | null;
}

export interface BuildListQuery {
  /** owner/name */
  repo?: string;
  status?: BuildStatus;
  /** default 50, at most 500 */
  limit?: number;
}

const LIST_SCRIPT = LuaScript.fromFile(new URL('./lua/builds-list.lua', import.meta.url), { BUILD: buildKeys.prefix });

const APPEND_DEPLOYMENT_SCRIPT = LuaScript.fromFile(new URL('./lua/build-append-deployment.lua', import.meta.url));

/** Reads build records; the lanes write them. */
export class BuildStore {
  constructor(private readonly redis: Redis) {}

  async get(id: string): Promise<BuildRecord | null> {
    return decodeBuild(await this.redis.hgetall(buildKeys.record(id)));
  }

  /** Records of these ids in the same order; missing ones are left out. */
  async getMany(ids: string[]): Promise<BuildRecord[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(buildKeys.record(id));
    const res = (await pipe.exec()) ?? [];
    const out: BuildRecord[] = [];
    for (const [err, hash] of res) {
      if (err) throw err;
      const r = decodeBuild(hash as Record<string, string>);
      if (r) out.push(r);
    }
    return out;
  }

  /** Newest first. */
  async list(query: BuildListQuery = {}): Promise<BuildRecord[]> {
    const limit = Math.max(1, Math.min(500, Math.floor(query.limit ?? 50)));
    let index: string;
    let filter = '';
    if (query.repo) {
      index = buildKeys.byRepo(query.repo);
      if (query.status) filter = JSON.stringify(query.status);
    } else if (query.status) {
      index = buildKeys.byStatus(query.status);
    } else {
      index = buildKeys.all;
    }
    const ids = (await LIST_SCRIPT.run(this.redis, [index], [filter, limit, 100_000])) as string[];
    return this.getMany(ids);
  }

  /** How many builds have each of these statuses now (from the per-status indexes, so exact and cheap). */
  async countByStatus<S extends BuildStatus>(statuses: readonly S[]): Promise<Record<S, number>> {
    const pipe = this.redis.pipeline();
    for (const s of statuses) pipe.zcard(buildKeys.byStatus(s));
    const res = (await pipe.exec()) ?? [];
    const out = {} as Record<S, number>;
    statuses.forEach((s, i) => {
      const [err, n] = res[i]!;
      if (err) throw err;
      out[s] = Number(n);
    });
    return out;
  }

  /** Adds a rollout this build started (deploy calls it). False when there is no such build. */
  async addDeployment(id: string, deploymentId: string): Promise<boolean> {
    const ok = await APPEND_DEPLOYMENT_SCRIPT.run(this.redis, [buildKeys.record(id)], [JSON.stringify(deploymentId)]);
    return ok === 1;
  }
}
