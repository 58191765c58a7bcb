import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { buildKeys, CHANGING_BUILD_FIELDS, decodeBuild, decodeStoredBuild, type BuildRecord, type Receipt, type VersionGuard } from '../store/index.js';
import { laneKeys } from './keys.js';

/*
 * The lane scripts. Each runs atomically in Redis, so the lanes, the slot counters and the build
 * records never disagree, whichever API process or worker runs them at the same time.
 * Record fields are stored JSON-encoded (see src/store/builds.ts): a status reads '"queued"'.
 * Every script that frees or fills a slot ends with a dispatch pass and answers the builds it
 * picked, so one round trip both changes state and moves the next builds towards BullMQ.
 * Keys are computed inside the scripts (per repository / per build), so these scripts target a
 * single Redis (standalone or Sentinel), not Redis Cluster.
 */
const PRELUDE = `
local BUILD = '${buildKeys.prefix}'
local BY_STATUS = '${buildKeys.statusPrefix}'
local BY_REPO = '${buildKeys.repoPrefix}'
local ALL = '${buildKeys.all}'
local SEQ = '${buildKeys.seq}'
local LANE = '${laneKeys.lanePrefix}'
local RING = '${laneKeys.ring}'
local RINGSEQ = '${laneKeys.ringSeq}'
local RUNNING = '${laneKeys.running}'
local CONC = '${laneKeys.concurrency}'
local CSUP = '${laneKeys.cancelSuperseded}'
local ACTIVE = '${laneKeys.active}'
local REFQ = '${laneKeys.refPrefix}'
local WORKERS = '${laneKeys.workers}'
local SLOTS = '${laneKeys.slots}'
local ABORT_CH = '${laneKeys.abortChannel}'
local W = 1000000000000

local function field(id, f)
  local v = redis.call('HGET', BUILD .. id, f)
  if not v then return nil end
  return cjson.decode(v)
end
local function status_of(id) return field(id, 'status') end
local function set_status(id, new)
  local old = status_of(id)
  local seq = redis.call('HGET', BUILD .. id, '_seq')
  if old then redis.call('ZREM', BY_STATUS .. old, id) end
  redis.call('ZADD', BY_STATUS .. new, seq, id)
  redis.call('HSET', BUILD .. id, 'status', cjson.encode(new))
end
local function set_fields(id, kv)
  if #kv > 0 then redis.call('HSET', BUILD .. id, unpack(kv)) end
end
local function conc_of(repo) return tonumber(redis.call('HGET', CONC, repo) or '1') end
local function running_of(repo) return tonumber(redis.call('HGET', RUNNING, repo) or '0') end

-- The ring: fewest running builds first, then the longest wait for a turn.
local function ring_offer(repo)
  if redis.call('ZSCORE', RING, repo) then return end
  if redis.call('LLEN', LANE .. repo) == 0 then return end
  local running = running_of(repo)
  if running >= conc_of(repo) then return end
  local turn = redis.call('INCR', RINGSEQ) % W
  redis.call('ZADD', RING, running * W + turn, repo)
end
-- after a repository's running count went down: same turn, better class
local function ring_rescore(repo)
  local s = redis.call('ZSCORE', RING, repo)
  if not s then return ring_offer(repo) end
  redis.call('ZADD', RING, running_of(repo) * W + (tonumber(s) % W), repo)
end

local function ref_key(id)
  local repo = field(id, '_repo')
  return REFQ .. repo .. '#' .. field(id, '_ref'), repo
end
-- gives back the slot a build held (idempotent)
local function release(id)
  local a = redis.call('HGET', ACTIVE, id)
  if not a then return 0 end
  redis.call('HDEL', ACTIVE, id)
  local repo = cjson.decode(a).repo
  if redis.call('HINCRBY', RUNNING, repo, -1) <= 0 then redis.call('HDEL', RUNNING, repo) end
  ring_rescore(repo)
  return 1
end
-- takes a build that has not started out of its lane, its ref index and its slot
local function unqueue(id)
  local key, repo = ref_key(id)
  redis.call('SREM', key, id)
  redis.call('LREM', LANE .. repo, 1, id)
  release(id)
end

-- Hands at most (free slots) builds to the work queue, one per repository turn.
-- Free slots = live workers' slots - builds holding a slot. Answers {id, jobId, id, jobId, …}.
local function dispatch(now)
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', WORKERS, '-inf', now)) do
    redis.call('HDEL', SLOTS, w)
    redis.call('ZREM', WORKERS, w)
  end
  local cap = 0
  for _, s in ipairs(redis.call('HVALS', SLOTS)) do cap = cap + tonumber(s) end
  local free = cap - redis.call('HLEN', ACTIVE)
  local out = {}
  while free > 0 do
    local top = redis.call('ZRANGE', RING, 0, 0)
    local repo = top[1]
    if not repo then break end
    redis.call('ZREM', RING, repo)
    local lane = LANE .. repo
    if running_of(repo) < conc_of(repo) then
      local id = redis.call('LPOP', lane)
      while id and status_of(id) ~= 'queued' do id = redis.call('LPOP', lane) end
      if id then
        local n = redis.call('HINCRBY', BUILD .. id, '_dispatches', 1)
        local job = (string.gsub(id, ':', '_')) .. '.' .. n
        redis.call('HSET', ACTIVE, id, cjson.encode({ job = job, repo = repo, at = now }))
        redis.call('HINCRBY', RUNNING, repo, 1)
        out[#out + 1] = id
        out[#out + 1] = job
        free = free - 1
        ring_offer(repo)
      end
    end
  end
  return out
end
local function record(id) return redis.call('HGETALL', BUILD .. id) end
-- publishes a stored record as {"type":"build","record":{…}} (the EventBus format): its fixed
-- fields (doc) and then its changing ones (their defaults when absent), joined in one table.concat
local CHANGING = { ${Object.keys(CHANGING_BUILD_FIELDS).map((f) => `'${f}'`).join(', ')} }
local ABSENT = { ${Object.values(CHANGING_BUILD_FIELDS).map((v) => `'${v ?? 'null'}'`).join(', ')} }
-- Queued records go to ch.queued, the others to ch.channel (src/store eventChannel).
local function publish_record(ch, id)
  local v = redis.call('HMGET', BUILD .. id, 'doc', unpack(CHANGING))
  local parts = { '{"type":"build","record":', string.sub(v[1], 1, -2) }
  for i, f in ipairs(CHANGING) do parts[#parts + 1] = ',"' .. f .. '":' .. (v[i + 1] or ABSENT[i]) end
  parts[#parts + 1] = '}}'
  redis.call('PUBLISH', v[2] == '"queued"' and ch.queued or ch.channel, table.concat(parts))
end
`;

/**
 * submit: a batch of submissions (those of one event-loop turn), each applied in order as if alone:
 * stores its new queued records, supersedes older queued builds of the same refs, enqueues, and
 * stores its receipt; one dispatch pass after all of them. Per submission it answers {'stale'}
 * when its guard does not hold, {'duplicate'} when its receipt's key exists, {'duplicate_build',
 * id} when a build id exists (nothing changed for it in these three cases), else {'queued',
 * superseded ids, aborted ids, superseded records (HGETALL each; none when published)}.
 * Answers {per-submission answers, picked}.
 */
const SUBMIT = `
local h = cjson.decode(ARGV[1])
-- the long strings come as arguments of their own, not inside the JSON: per submission its
-- receipt's text, then per build its b.n hash field/value strings (src/store encodeBuild)
local at = 2
for _, p in ipairs(h.subs) do
  if p.receipt then p.receipt.json = ARGV[at]; at = at + 1 end
  for _, b in ipairs(p.builds) do
    b.first = at
    at = at + b.n
  end
end
-- an older build is replaced when every one of its rules is built again by the submission
local function replaced_by_rules(g, rules)
  if not rules or #rules == 0 then return nil end
  local by = nil
  for _, r in ipairs(rules) do
    local o = g.owner[r]
    if not o then return nil end
    if not by then by = o end
  end
  return by
end
local function replaced_by(g, id) return replaced_by_rules(g, field(id, '_rules')) end

local function submit(p)
  local guard, rc = p.guard, p.receipt
  if guard and redis.call('HGET', guard.key, guard.field) ~= guard.value then return { 'stale' } end
  if rc and redis.call('EXISTS', rc.key) == 1 then return { 'duplicate' } end
  for _, b in ipairs(p.builds) do
    if redis.call('EXISTS', BUILD .. b.id) == 1 then return { 'duplicate_build', b.id } end
  end
  -- per repo+ref of this submission: which new build carries each rule
  local groups, order = {}, {}
  for _, b in ipairs(p.builds) do
    local k = b.repo .. '#' .. b.ref
    local g = groups[k]
    if not g then
      g = { key = k, repo = b.repo, ref = b.ref, owner = {} }
      groups[k] = g
      order[#order + 1] = g
    end
    for _, r in ipairs(b.rules) do
      if not g.owner[r] then g.owner[r] = b.id end
    end
  end
  for _, b in ipairs(p.builds) do
    if p.concurrency then redis.call('HSET', CONC, b.repo, p.concurrency) end
    if p.cancelSuperseded ~= nil then redis.call('HSET', CSUP, b.repo, p.cancelSuperseded and '1' or '0') end
  end
  local superseded, aborted = {}, {}
  for _, g in ipairs(order) do
    for _, old in ipairs(redis.call('SMEMBERS', REFQ .. g.key)) do
      -- one read per older build; its repo and ref are the group's (what unqueue and set_status would read)
      local st, rules, seq = unpack(redis.call('HMGET', BUILD .. old, 'status', '_rules', '_seq'))
      if st == '"queued"' then
        local by = replaced_by_rules(g, rules and cjson.decode(rules))
        if by then
          redis.call('SREM', REFQ .. g.key, old)
          redis.call('LREM', LANE .. g.repo, 1, old)
          release(old)
          redis.call('ZREM', BY_STATUS .. 'queued', old)
          redis.call('ZADD', BY_STATUS .. 'superseded', seq, old)
          redis.call('HSET', BUILD .. old, 'status', cjson.encode('superseded'), 'supersededBy', cjson.encode(by), 'finishedAt', cjson.encode(h.finishedAt))
          superseded[#superseded + 1] = old
        end
      else
        redis.call('SREM', REFQ .. g.key, old)
      end
    end
    if redis.call('HGET', CSUP, g.repo) == '1' then
      local act = redis.call('HGETALL', ACTIVE)
      for i = 1, #act, 2 do
        local id = act[i]
        if cjson.decode(act[i + 1]).repo == g.repo and status_of(id) == 'running' and field(id, '_ref') == g.ref
          and redis.call('HEXISTS', BUILD .. id, '_abort') == 0 then
          local by = replaced_by(g, id)
          if by then
            local msg = cjson.encode({ id = id, reason = 'superseded', by = by })
            redis.call('HSET', BUILD .. id, '_abort', msg)
            redis.call('PUBLISH', ABORT_CH, msg)
            aborted[#aborted + 1] = id
          end
        end
      end
    end
  end
  for _, b in ipairs(p.builds) do
    local key = BUILD .. b.id
    local seq = redis.call('INCR', SEQ)
    local kv = { unpack(ARGV, b.first, b.first + b.n - 1) }
    kv[#kv + 1] = '_seq'; kv[#kv + 1] = seq; kv[#kv + 1] = '_dispatches'; kv[#kv + 1] = 0; kv[#kv + 1] = '_attempts'; kv[#kv + 1] = 0
    redis.call('HSET', key, unpack(kv))
    redis.call('ZADD', ALL, seq, b.id)
    redis.call('ZADD', BY_REPO .. b.repo, seq, b.id)
    redis.call('ZADD', BY_STATUS .. 'queued', seq, b.id)
    redis.call('RPUSH', LANE .. b.repo, b.id)
    redis.call('SADD', REFQ .. b.repo .. '#' .. b.ref, b.id)
  end
  for _, b in ipairs(p.builds) do ring_offer(b.repo) end
  -- Announce the new and the superseded records as they now are: published here (h.events, the
  -- EventBus format) or answered, so the caller never reads them back.
  local records = {}
  if h.events then
    for _, b in ipairs(p.builds) do publish_record(h.events, b.id) end
    for _, old in ipairs(superseded) do publish_record(h.events, old) end
  else
    for i, old in ipairs(superseded) do records[i] = record(old) end
  end
  if rc then
    local body = string.sub(rc.json, 1, -2) .. ',"superseded":' .. (#superseded == 0 and '[]' or cjson.encode(superseded)) .. '}'
    redis.call('SET', rc.key, body, 'PX', rc.ttlMs)
    redis.call('LPUSH', rc.journal.key, body)
    redis.call('LTRIM', rc.journal.key, 0, rc.journal.cap - 1)
    if rc.mark then redis.call('HSET', rc.mark.key, rc.mark.field, rc.mark.value) end
  end
  return { 'queued', superseded, aborted, records }
end

local answers = {}
for i, p in ipairs(h.subs) do answers[i] = submit(p) end
return { answers, dispatch(h.now) }
`;

/** dispatch alone (timers, start-up). ARGV: now. */
const DISPATCH = `
return dispatch(tonumber(ARGV[1]))
`;

/**
 * claim: a worker starts (or, after a crash, takes over) the build of a job.
 * ARGV: now, id, jobId, owner, startedAt (JSON).
 * Answers {'stale'} | {'start', attempts, record} | {'resume', attempts, record, abort}.
 */
const CLAIM = `
local id, job, owner = ARGV[2], ARGV[3], ARGV[4]
local a = redis.call('HGET', ACTIVE, id)
if not a or cjson.decode(a).job ~= job then return { 'stale' } end
local st = status_of(id)
local key = BUILD .. id
if st == 'queued' then
  local rk = ref_key(id)
  redis.call('SREM', rk, id)
  set_status(id, 'running')
  redis.call('HSET', key, 'startedAt', ARGV[5], '_owner', owner)
  local n = redis.call('HINCRBY', key, '_attempts', 1)
  return { 'start', n, record(id) }
elseif st == 'running' then
  redis.call('HSET', key, '_owner', owner)
  local n = redis.call('HINCRBY', key, '_attempts', 1)
  return { 'resume', n, record(id), redis.call('HGET', key, '_abort') or '' }
end
release(id)
return { 'stale' }
`;

/**
 * finish: running → a final status, exactly once (compare-and-set on status), the slot is given
 * back and the next builds are dispatched. ARGV: now, id, new status, JSON [field, json, …], the
 * job id the caller ran (the build must still be held under that job: a stale job never ends a
 * build that was handed back and dispatched again). Answers {ended 0|1, record, picked}.
 */
const FINISH = `
local id = ARGV[2]
local a = redis.call('HGET', ACTIVE, id)
if status_of(id) ~= 'running' or not a or cjson.decode(a).job ~= ARGV[5] then
  return { 0, {}, dispatch(tonumber(ARGV[1])) }
end
set_status(id, ARGV[3])
set_fields(id, cjson.decode(ARGV[4]))
redis.call('HDEL', BUILD .. id, '_owner', '_abort')
release(id)
return { 1, record(id), dispatch(tonumber(ARGV[1])) }
`;

/**
 * hand back: running → queued at the front of its lane (same record), only by the worker that
 * holds it. ARGV: now, id, owner. Answers {'handed-back', record, picked} | {'not-owner'} |
 * {'abort', note}: an abort is pending, nothing changed, the caller ends the build that way.
 */
const HANDBACK = `
local id, owner = ARGV[2], ARGV[3]
local key = BUILD .. id
if status_of(id) ~= 'running' or redis.call('HGET', key, '_owner') ~= owner then return { 'not-owner' } end
local ab = redis.call('HGET', key, '_abort')
if ab then return { 'abort', ab } end
set_status(id, 'queued')
redis.call('HSET', key, 'startedAt', 'null')
redis.call('HDEL', key, '_owner')
local rk, repo = ref_key(id)
redis.call('SADD', rk, id)
redis.call('LPUSH', LANE .. repo, id)
release(id)
return { 'handed-back', record(id), dispatch(tonumber(ARGV[1])) }
`;

/**
 * cancel: queued → cancelled at once; running → the abort is recorded and published to whichever
 * worker holds it. ARGV: now, id, by, finishedAt (JSON), error (JSON).
 * Answers {'missing'} | {'cancelled', record, picked} | {'requested', record} | {'ended', record}.
 */
const CANCEL = `
local id, by = ARGV[2], ARGV[3]
local st = status_of(id)
if not st then return { 'missing' } end
if st == 'queued' then
  unqueue(id)
  set_status(id, 'cancelled')
  redis.call('HSET', BUILD .. id, 'finishedAt', ARGV[4], 'error', ARGV[5])
  return { 'cancelled', record(id), dispatch(tonumber(ARGV[1])) }
elseif st == 'running' then
  if redis.call('HEXISTS', BUILD .. id, '_abort') == 0 then
    local msg = cjson.encode({ id = id, reason = 'cancelled', by = by })
    redis.call('HSET', BUILD .. id, '_abort', msg)
    redis.call('PUBLISH', ABORT_CH, msg)
  end
  return { 'requested', record(id) }
end
return { 'ended', record(id) }
`;

/** heartbeat: a worker announces its slots until `expires`. ARGV: worker id, slots, expires (ms). */
const HEARTBEAT = `
redis.call('ZADD', WORKERS, ARGV[3], ARGV[1])
redis.call('HSET', SLOTS, ARGV[1], ARGV[2])
return 1
`;

/** leave: a stopping worker takes its slots out of the pool. ARGV: worker id. */
const LEAVE = `
redis.call('ZREM', WORKERS, ARGV[1])
redis.call('HDEL', SLOTS, ARGV[1])
return 1
`;

class Script {
  readonly sha: string;
  readonly src: string;
  constructor(body: string) {
    this.src = PRELUDE + body;
    this.sha = createHash('sha1').update(this.src).digest('hex');
  }
  async run(redis: Redis, args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, 0, ...args);
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return redis.eval(this.src, 0, ...args);
    }
  }
}

/** One submission of a batch. */
export interface Submission {
  /** `fields`: the new record as hash field/value strings (src/store encodeBuild). */
  builds: { id: string; repo: string; ref: string; rules: string[]; fields: string[] }[];
  concurrency?: number;
  cancelSuperseded?: boolean;
  /** Submit only when the receipt's key is new, and store the receipt along. */
  receipt?: Receipt;
  /** Submit only while it holds. */
  guard?: VersionGuard;
}

export interface SubmitBatch {
  now: number;
  finishedAt: string;
  /** Publish the new and superseded records on these pub/sub channels (instead of answering the superseded ones). */
  events?: { channel: string; queued: string };
  subs: Submission[];
}

/** What became of one submission; nothing changed for it unless `queued`. */
export type SubmissionAnswer =
  | { outcome: 'stale' | 'duplicate' }
  | { outcome: 'duplicate_build'; id: string }
  | { outcome: 'queued'; superseded: string[]; aborted: string[]; supersededRecords: BuildRecord[] };

/** Builds a dispatch pass picked: add a work-queue job `job` for build `id`. */
export type Picked = { id: string; job: string }[];

export type ClaimResult =
  | { kind: 'stale' }
  | { kind: 'start'; attempts: number; record: BuildRecord }
  | { kind: 'resume'; attempts: number; record: BuildRecord; abort: AbortNote | null };

export interface AbortNote {
  id: string;
  reason: 'cancelled' | 'superseded';
  by: string;
}

const scripts = {
  submit: new Script(SUBMIT),
  dispatch: new Script(DISPATCH),
  claim: new Script(CLAIM),
  finish: new Script(FINISH),
  handback: new Script(HANDBACK),
  cancel: new Script(CANCEL),
  heartbeat: new Script(HEARTBEAT),
  leave: new Script(LEAVE),
};

function picked(flat: unknown): Picked {
  const a = (flat ?? []) as string[];
  const out: Picked = [];
  for (let i = 0; i < a.length; i += 2) out.push({ id: a[i]!, job: a[i + 1]! });
  return out;
}

function recordOf(flat: unknown): BuildRecord | null {
  const a = (flat ?? []) as string[];
  const hash: Record<string, string> = {};
  for (let i = 0; i < a.length; i += 2) hash[a[i]!] = a[i + 1]!;
  return decodeBuild(hash);
}

/** Typed calls of the lane scripts over one connection. */
export class LaneScripts {
  constructor(private readonly redis: Redis) {}

  /** Applies the submissions in order, in one script; `supersededRecords` are empty when `events` published them. */
  async submit(batch: SubmitBatch): Promise<{ answers: SubmissionAnswer[]; picked: Picked }> {
    // Long strings go as arguments of their own: Lua's JSON decoder would copy them twice.
    const args: string[] = [''];
    const subs = batch.subs.map((s) => {
      if (s.receipt) args.push(s.receipt.json);
      for (const b of s.builds) for (const f of b.fields) args.push(f);
      return {
        ...(s.concurrency !== undefined ? { concurrency: s.concurrency } : {}),
        ...(s.cancelSuperseded !== undefined ? { cancelSuperseded: s.cancelSuperseded } : {}),
        ...(s.guard ? { guard: s.guard } : {}),
        ...(s.receipt ? { receipt: { ...s.receipt, json: undefined } } : {}),
        builds: s.builds.map((b) => ({ id: b.id, repo: b.repo, ref: b.ref, rules: b.rules, n: b.fields.length })),
      };
    });
    args[0] = JSON.stringify({ now: batch.now, finishedAt: batch.finishedAt, ...(batch.events ? { events: batch.events } : {}), subs });
    const [raw, next] = (await scripts.submit.run(this.redis, args)) as [unknown[][], unknown];
    const answers = raw.map((a): SubmissionAnswer => {
      if (a[0] === 'stale' || a[0] === 'duplicate') return { outcome: a[0] };
      if (a[0] === 'duplicate_build') return { outcome: 'duplicate_build', id: String(a[1]) };
      const [, superseded, aborted, records] = a as [string, string[], string[], string[][]];
      // Written by this very script a moment ago: decoded without re-validating (see decodeStoredBuild).
      const supersededRecords: BuildRecord[] = [];
      for (const flat of records) {
        const r = decodeStoredBuild(flat);
        if (r) supersededRecords.push(r);
      }
      return { outcome: 'queued', superseded, aborted, supersededRecords };
    });
    return { answers, picked: picked(next) };
  }

  async dispatch(nowMs: number): Promise<Picked> {
    return picked(await scripts.dispatch.run(this.redis, [nowMs]));
  }

  async claim(now: number, id: string, job: string, owner: string, startedAt: string): Promise<ClaimResult> {
    const r = (await scripts.claim.run(this.redis, [now, id, job, owner, JSON.stringify(startedAt)])) as [string, number?, unknown?, string?];
    const record = recordOf(r[2]);
    if (r[0] === 'stale' || !record) return { kind: 'stale' };
    if (r[0] === 'start') return { kind: 'start', attempts: Number(r[1]), record };
    return { kind: 'resume', attempts: Number(r[1]), record, abort: r[3] ? (JSON.parse(r[3]) as AbortNote) : null };
  }

  /** `fields`: record fields to set with the new status (values as they go into the record). */
  async finish(now: number, id: string, job: string, status: string, fields: Record<string, unknown>): Promise<{ record: BuildRecord | null; picked: Picked }> {
    const kv: string[] = [];
    for (const [k, v] of Object.entries(fields)) kv.push(k, JSON.stringify(v));
    const [ended, rec, next] = (await scripts.finish.run(this.redis, [now, id, status, JSON.stringify(kv), job])) as [number, unknown, unknown];
    return { record: ended === 1 ? recordOf(rec) : null, picked: picked(next) };
  }

  async handback(now: number, id: string, owner: string): Promise<{ kind: 'handed-back'; record: BuildRecord | null; picked: Picked } | { kind: 'not-owner' } | { kind: 'abort'; note: AbortNote }> {
    const r = (await scripts.handback.run(this.redis, [now, id, owner])) as [string, unknown?, unknown?];
    if (r[0] === 'handed-back') return { kind: 'handed-back', record: recordOf(r[1]), picked: picked(r[2]) };
    if (r[0] === 'abort') return { kind: 'abort', note: JSON.parse(String(r[1])) as AbortNote };
    return { kind: 'not-owner' };
  }

  async cancel(now: number, id: string, by: string, finishedAt: string, error: string): Promise<{ outcome: 'missing' | 'cancelled' | 'requested' | 'ended'; record: BuildRecord | null; picked: Picked }> {
    const r = (await scripts.cancel.run(this.redis, [now, id, by, JSON.stringify(finishedAt), JSON.stringify(error)])) as [string, unknown?, unknown?];
    return { outcome: r[0] as 'missing' | 'cancelled' | 'requested' | 'ended', record: recordOf(r[1]), picked: picked(r[2]) };
  }

  async heartbeat(worker: string, slots: number, expiresMs: number): Promise<void> {
    await scripts.heartbeat.run(this.redis, [worker, slots, expiresMs]);
  }

  async leave(worker: string): Promise<void> {
    await scripts.leave.run(this.redis, [worker]);
  }
}
