import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { buildKeys } from '../store/index.js';
import { laneKeys } from './keys.js';

/*
 * The lane scripts. Each runs atomically in Redis, so the lanes, the slot counters and the build
 * records never disagree, whichever API process or worker runs them at the same time.
 * Record fields are stored JSON-encoded (see src/store/builds.ts): a status reads '"queued"'.
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
local RINGSET = '${laneKeys.ringSet}'
local RUNNING = '${laneKeys.running}'
local CONC = '${laneKeys.concurrency}'
local CSUP = '${laneKeys.cancelSuperseded}'
local ACTIVE = '${laneKeys.active}'
local REFQ = '${laneKeys.refPrefix}'
local WORKERS = '${laneKeys.workers}'
local SLOTS = '${laneKeys.slots}'
local ABORT_CH = '${laneKeys.abortChannel}'

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
-- puts a repository at the end of the ring when it has waiting work and room to run it
local function ring_offer(repo)
  if redis.call('SISMEMBER', RINGSET, repo) == 1 then return end
  if redis.call('LLEN', LANE .. repo) == 0 then return end
  if running_of(repo) >= conc_of(repo) then return end
  redis.call('RPUSH', RING, repo)
  redis.call('SADD', RINGSET, repo)
end
local function ref_key(id)
  local repo = field(id, 'repo')
  return REFQ .. repo .. '#' .. field(id, 'ref'), repo
end
-- gives back the slot a build held (idempotent)
local function release(id)
  local a = redis.call('HGET', ACTIVE, id)
  if not a then return 0 end
  redis.call('HDEL', ACTIVE, id)
  local repo = cjson.decode(a).repo
  if redis.call('HINCRBY', RUNNING, repo, -1) <= 0 then redis.call('HDEL', RUNNING, repo) end
  ring_offer(repo)
  return 1
end
-- takes a build that has not started out of its lane, its ref index and its slot
local function unqueue(id)
  local key, repo = ref_key(id)
  redis.call('SREM', key, id)
  redis.call('LREM', LANE .. repo, 1, id)
  release(id)
end
`;

/** submit: stores new queued records, supersedes older queued builds of the same refs, enqueues. */
const SUBMIT = `
local p = cjson.decode(ARGV[1])
for _, b in ipairs(p.builds) do
  if redis.call('EXISTS', BUILD .. b.id) == 1 then return redis.error_reply('DUPLICATE ' .. b.id) end
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
-- an older build is replaced when every one of its rules is built again by this submission
local function replaced_by(g, id)
  local rules = field(id, 'rules')
  if not rules or #rules == 0 then return nil end
  local by = nil
  for _, r in ipairs(rules) do
    local o = g.owner[r]
    if not o then return nil end
    if not by then by = o end
  end
  return by
end
for _, b in ipairs(p.builds) do
  if p.concurrency then redis.call('HSET', CONC, b.repo, p.concurrency) end
  if p.cancelSuperseded ~= nil then redis.call('HSET', CSUP, b.repo, p.cancelSuperseded and '1' or '0') end
end
local superseded, aborted = {}, {}
for _, g in ipairs(order) do
  for _, old in ipairs(redis.call('SMEMBERS', REFQ .. g.key)) do
    if status_of(old) == 'queued' then
      local by = replaced_by(g, old)
      if by then
        unqueue(old)
        set_status(old, 'superseded')
        redis.call('HSET', BUILD .. old, 'supersededBy', cjson.encode(by), 'finishedAt', cjson.encode(p.finishedAt))
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
      if cjson.decode(act[i + 1]).repo == g.repo and status_of(id) == 'running' and field(id, 'ref') == g.ref
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
  redis.call('HSET', key, unpack(b.fields))
  redis.call('HSET', key, '_seq', seq, '_dispatches', 0, '_attempts', 0)
  redis.call('ZADD', ALL, seq, b.id)
  redis.call('ZADD', BY_REPO .. b.repo, seq, b.id)
  redis.call('ZADD', BY_STATUS .. 'queued', seq, b.id)
  redis.call('RPUSH', LANE .. b.repo, b.id)
  redis.call('SADD', REFQ .. b.repo .. '#' .. b.ref, b.id)
end
for _, b in ipairs(p.builds) do ring_offer(b.repo) end
return { superseded, aborted }
`;

/**
 * dispatch: hands at most (free slots) builds to the work queue, one per repository turn, in
 * round-robin order of the ring. Free slots = live workers' slots - builds holding a slot.
 * Answers [id, jobId, id, jobId, …]; the caller adds those jobs to BullMQ.
 */
const DISPATCH = `
local now = tonumber(ARGV[1])
for _, w in ipairs(redis.call('ZRANGEBYSCORE', WORKERS, '-inf', now)) do
  redis.call('HDEL', SLOTS, w)
  redis.call('ZREM', WORKERS, w)
end
local cap = 0
for _, s in ipairs(redis.call('HVALS', SLOTS)) do cap = cap + tonumber(s) end
local free = cap - redis.call('HLEN', ACTIVE)
local out = {}
while free > 0 do
  local repo = redis.call('LPOP', RING)
  if not repo then break end
  local lane = LANE .. repo
  local conc, running = conc_of(repo), running_of(repo)
  local id = nil
  if running < conc then
    id = redis.call('LPOP', lane)
    while id and status_of(id) ~= 'queued' do id = redis.call('LPOP', lane) end
  end
  if id then
    local n = redis.call('HINCRBY', BUILD .. id, '_dispatches', 1)
    local job = (string.gsub(id, ':', '_')) .. '.' .. n
    redis.call('HSET', ACTIVE, id, cjson.encode({ job = job, repo = repo, at = now }))
    redis.call('HINCRBY', RUNNING, repo, 1)
    out[#out + 1] = id
    out[#out + 1] = job
    free = free - 1
    if redis.call('LLEN', lane) > 0 and running + 1 < conc then
      redis.call('RPUSH', RING, repo)
    else
      redis.call('SREM', RINGSET, repo)
    end
  else
    redis.call('SREM', RINGSET, repo)
  end
end
return out
`;

/**
 * claim: a worker starts (or, after a crash, takes over) the build of a job.
 * ARGV: id, jobId, owner, startedAt (JSON). Answers {'stale'} | {'start', attempts} | {'resume', attempts, abort}.
 */
const CLAIM = `
local id, job, owner = ARGV[1], ARGV[2], ARGV[3]
local a = redis.call('HGET', ACTIVE, id)
if not a or cjson.decode(a).job ~= job then return { 'stale' } end
local st = status_of(id)
local key = BUILD .. id
if st == 'queued' then
  local rk = ref_key(id)
  redis.call('SREM', rk, id)
  set_status(id, 'running')
  redis.call('HSET', key, 'startedAt', ARGV[4], '_owner', owner)
  return { 'start', redis.call('HINCRBY', key, '_attempts', 1) }
elseif st == 'running' then
  redis.call('HSET', key, '_owner', owner)
  return { 'resume', redis.call('HINCRBY', key, '_attempts', 1), redis.call('HGET', key, '_abort') or '' }
end
release(id)
return { 'stale' }
`;

/**
 * finish: running → a final status, exactly once (compare-and-set on status), and the slot is
 * given back. ARGV: id, new status, JSON [field, json, …], job id the caller ran (the build must
 * still be held under that job: a stale job never ends a build that was handed back and
 * dispatched again). Answers 1 when this call ended it.
 */
const FINISH = `
local id = ARGV[1]
if status_of(id) ~= 'running' then return 0 end
local a = redis.call('HGET', ACTIVE, id)
if not a or cjson.decode(a).job ~= ARGV[4] then return 0 end
set_status(id, ARGV[2])
set_fields(id, cjson.decode(ARGV[3]))
redis.call('HDEL', BUILD .. id, '_owner', '_abort')
release(id)
return 1
`;

/**
 * hand back: running → queued at the front of its lane (same record), only by the worker that
 * holds it. ARGV: id, owner. Answers 1; 0 when not held by owner; or the pending abort (JSON),
 * in which case nothing changed and the caller ends the build that way instead.
 */
const HANDBACK = `
local id, owner = ARGV[1], ARGV[2]
local key = BUILD .. id
if status_of(id) ~= 'running' or redis.call('HGET', key, '_owner') ~= owner then return 0 end
local ab = redis.call('HGET', key, '_abort')
if ab then return ab end
set_status(id, 'queued')
redis.call('HSET', key, 'startedAt', 'null')
redis.call('HDEL', key, '_owner')
local rk, repo = ref_key(id)
redis.call('SADD', rk, id)
redis.call('LPUSH', LANE .. repo, id)
release(id)
return 1
`;

/**
 * cancel: queued → cancelled at once; running → the abort is recorded and published to whichever
 * worker holds it. ARGV: id, by, finishedAt (JSON), error (JSON).
 * Answers 'missing' | 'cancelled' | 'requested' | 'ended'.
 */
const CANCEL = `
local id, by = ARGV[1], ARGV[2]
local st = status_of(id)
if not st then return 'missing' end
if st == 'queued' then
  unqueue(id)
  set_status(id, 'cancelled')
  redis.call('HSET', BUILD .. id, 'finishedAt', ARGV[3], 'error', ARGV[4])
  return 'cancelled'
elseif st == 'running' then
  if redis.call('HEXISTS', BUILD .. id, '_abort') == 0 then
    local msg = cjson.encode({ id = id, reason = 'cancelled', by = by })
    redis.call('HSET', BUILD .. id, '_abort', msg)
    redis.call('PUBLISH', ABORT_CH, msg)
  end
  return 'requested'
end
return 'ended'
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

export interface SubmitPayload {
  builds: { id: string; repo: string; ref: string; rules: string[]; fields: string[] }[];
  finishedAt: string;
  concurrency?: number;
  cancelSuperseded?: boolean;
}

export type ClaimResult =
  | { kind: 'stale' }
  | { kind: 'start'; attempts: number }
  | { kind: 'resume'; attempts: number; abort: AbortNote | null };

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

/** Typed calls of the lane scripts over one connection. */
export class LaneScripts {
  constructor(private readonly redis: Redis) {}

  async submit(p: SubmitPayload): Promise<{ superseded: string[]; aborted: string[] }> {
    const [superseded, aborted] = (await scripts.submit.run(this.redis, [JSON.stringify(p)])) as [string[], string[]];
    return { superseded, aborted };
  }

  async dispatch(nowMs: number): Promise<{ id: string; job: string }[]> {
    const flat = (await scripts.dispatch.run(this.redis, [nowMs])) as string[];
    const out: { id: string; job: string }[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i]!, job: flat[i + 1]! });
    return out;
  }

  async claim(id: string, job: string, owner: string, startedAt: string): Promise<ClaimResult> {
    const r = (await scripts.claim.run(this.redis, [id, job, owner, JSON.stringify(startedAt)])) as [string, number?, string?];
    if (r[0] === 'start') return { kind: 'start', attempts: Number(r[1]) };
    if (r[0] === 'resume') return { kind: 'resume', attempts: Number(r[1]), abort: r[2] ? (JSON.parse(r[2]) as AbortNote) : null };
    return { kind: 'stale' };
  }

  /** `fields`: record fields to set with the new status (values as they go into the record). */
  async finish(id: string, job: string, status: string, fields: Record<string, unknown>): Promise<boolean> {
    const kv: string[] = [];
    for (const [k, v] of Object.entries(fields)) kv.push(k, JSON.stringify(v));
    return (await scripts.finish.run(this.redis, [id, status, JSON.stringify(kv), job])) === 1;
  }

  async handback(id: string, owner: string): Promise<'handed-back' | 'not-owner' | AbortNote> {
    const r = await scripts.handback.run(this.redis, [id, owner]);
    if (r === 1) return 'handed-back';
    if (typeof r === 'string') return JSON.parse(r) as AbortNote;
    return 'not-owner';
  }

  async cancel(id: string, by: string, finishedAt: string, error: string): Promise<'missing' | 'cancelled' | 'requested' | 'ended'> {
    return (await scripts.cancel.run(this.redis, [id, by, JSON.stringify(finishedAt), JSON.stringify(error)])) as
      | 'missing'
      | 'cancelled'
      | 'requested'
      | 'ended';
  }

  async heartbeat(worker: string, slots: number, expiresMs: number): Promise<void> {
    await scripts.heartbeat.run(this.redis, [worker, slots, expiresMs]);
  }

  async leave(worker: string): Promise<void> {
    await scripts.leave.run(this.redis, [worker]);
  }
}
