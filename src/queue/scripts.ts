import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
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

-- The record's fixed fields (repo, ref, rules, …): read where a build is picked up, not per delivery.
local function doc_of(id) return cjson.decode(redis.call('HGET', BUILD .. id, 'doc')) end
local function ref_key(id)
  local d = doc_of(id)
  return REFQ .. d.repo .. '#' .. d.ref, d.repo
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
`;

/**
 * submit: a batch of submissions (those of one event-loop turn), each decided in order as if alone:
 * it stores its new queued records, supersedes older queued builds of the same refs, enqueues, and
 * stores its receipt. The batch is worked out in memory first (the state it reads is read once),
 * then its net effect is written with one command per touched key (each record, receipt, index,
 * lane, ref), not one per submission: a batch of 50 deliveries costs Redis about 3 commands each
 * instead of 30. One dispatch pass after all of them.
 * Per submission it answers a line: 'stale' when its guard does not hold, 'duplicate' when its
 * receipt's key exists, 'duplicate_build<TAB>id' when a build id exists, 'replayed<TAB>ms' when its
 * receipt's push is older than the newest accepted push of its ref (nothing changed for it in
 * these four cases), else 'queued<TAB>superseded ids<TAB>aborted ids' (ids space-separated: they
 * have no whitespace). Answers {the lines joined by newlines, picked, per submission its superseded
 * records as flat hashes (empty when published)}. One string instead of a nested table per
 * submission: the client's reply decoder costs by element (bench/README.md has the figures).
 * Events (h.events, a channel): one message per batch, a JSON array of packed build events (src/store
 * unpackBuildEvent) in the order the submissions made them: each one's new records, queued, then the
 * queued builds it superseded. None of these builds has started (the channel of unstarted builds).
 * Sent only while someone subscribes (PUBSUB NUMSUB/NUMPAT): pub/sub keeps nothing, so a message nobody hears is work for nothing.
 */
const SUBMIT = `
-- The batch comes as flat arguments in the order LaneScripts.submit writes them (decoding a JSON
-- header cost more than the rest of a submission): now, finishedAt, events channel or '', the
-- number of submissions, then per submission a fixed run of strings ('' = absent) and its builds,
-- each with its rules and its b.n hash field/value strings (src/store encodeBuild).
local A = ARGV -- a local: each global lookup of ARGV costs a table access
local at = 5
local function take()
  at = at + 1
  return A[at - 1]
end
local h = { now = tonumber(ARGV[1]), finishedAt = ARGV[2], events = ARGV[3] ~= '' and ARGV[3] or nil, subs = {} }
for s = 1, tonumber(ARGV[4]) do
  local nb, conc, csup = tonumber(take()), take(), take()
  local gkey, gfield, gvalue = take(), take(), take()
  local rkey, ttl, head, jkey, jcap, mkey, mfield, mvalue = take(), take(), take(), take(), take(), take(), take(), take()
  local nkey, nfield, nvalue = take(), take(), take()
  local p = { builds = {} }
  if conc ~= '' then p.concurrency = conc end
  if csup ~= '' then p.cancelSuperseded = csup end
  if gkey ~= '' then p.guard = { key = gkey, field = gfield, value = gvalue } end
  if rkey ~= '' then
    p.receipt = { key = rkey, ttlMs = ttl, head = head, journal = { key = jkey, cap = tonumber(jcap) } }
    if mkey ~= '' then p.receipt.mark = { key = mkey, field = mfield, value = mvalue } end
    if nkey ~= '' then p.receipt.newest = { key = nkey, field = nfield, value = tonumber(nvalue) } end
  end
  for i = 1, nb do
    local b = { id = take(), repo = take(), ref = take(), rules = {} }
    b.key, b.rk = BUILD .. b.id, b.repo .. '#' .. b.ref -- each made once: Lua hashes every new string
    for r = 1, tonumber(take()) do b.rules[r] = take() end
    b.n = tonumber(take())
    b.first = at
    at = at + b.n
    p.builds[i] = b
  end
  h.subs[s] = p
end

-- Pub/sub keeps nothing: with nobody subscribed (channel or pattern) no message is built or sent.
local publish = h.events and (redis.call('PUBSUB', 'NUMSUB', h.events)[2] > 0 or redis.call('PUBSUB', 'NUMPAT') > 0)

local CHANGING = { ${Object.keys(CHANGING_BUILD_FIELDS).map((f) => `'${f}'`).join(', ')} }
local CHANGING_SET = {}
for _, f in ipairs(CHANGING) do CHANGING_SET[f] = true end
local QUEUED, SUPERSEDED = cjson.encode('queued'), cjson.encode('superseded')
local FINISHED = cjson.encode(h.finishedAt)

-- What the batch reads, read once: guards, receipts and build ids that exist, lane settings,
-- the queued builds of each ref it touches. b.v holds a record's doc and changing fields (JSON).
local guards, taken, lanecfg, refs, known = {}, {}, {}, {}, {}
local function guard_holds(g)
  local byField = guards[g.key]
  if not byField then
    byField = {}
    guards[g.key] = byField
  end
  if byField[g.field] == nil then byField[g.field] = redis.call('HGET', g.key, g.field) or false end
  return byField[g.field] == g.value
end
do
  local rks, bks = {}, {}
  for _, p in ipairs(h.subs) do
    if p.receipt then rks[#rks + 1] = p.receipt.key end
    for _, b in ipairs(p.builds) do bks[#bks + 1] = b.key end
  end
  if #rks > 0 then
    for i, v in ipairs(redis.call('MGET', unpack(rks))) do if v then taken[rks[i]] = true end end
  end
  if #bks > 0 and redis.call('EXISTS', unpack(bks)) > 0 then
    for _, k in ipairs(bks) do if redis.call('EXISTS', k) == 1 then taken[k] = true end end
  end
end
local repo_order = {}
local function cfg(repo)
  local c = lanecfg[repo]
  if not c then
    c = { conc = redis.call('HGET', CONC, repo), csup = redis.call('HGET', CSUP, repo), new = {}, olds = {} }
    c.conc0, c.csup0 = c.conc, c.csup
    lanecfg[repo] = c
    repo_order[#repo_order + 1] = repo
  end
  return c
end
local OLD_FIELDS = { 'doc', '_seq', unpack(CHANGING) }
local function build_of(id)
  local b = known[id]
  if not b then
    local v = redis.call('HMGET', BUILD .. id, unpack(OLD_FIELDS))
    b = { id = id, old = true, v = { doc = v[1] }, rules = v[1] and cjson.decode(v[1]).rules or {}, seq = v[2] }
    for i, f in ipairs(CHANGING) do b.v[f] = v[i + 2] end
    known[id] = b
  end
  return b
end

local ref_order = {}
local function ref_state(k)
  local r = refs[k]
  if not r then
    r = { key = k, ids = redis.call('SMEMBERS', REFQ .. k), gone = {} }
    -- oldest first, so a submission supersedes (and lists) builds in the order they were queued
    table.sort(r.ids, function(x, y) return (tonumber(build_of(x).seq) or 0) < (tonumber(build_of(y).seq) or 0) end)
    refs[k] = r
    ref_order[#ref_order + 1] = r
  end
  return r
end
-- Appends a record to an event message in the packed form (src/store unpackBuildEvent): its stored
-- strings as they are, {"type":"build","doc":{…},"status":…, …the other changing fields it has},
-- so a message costs one string however many records it carries.
local AS_KEY = {}
for _, f in ipairs(CHANGING) do AS_KEY[f] = ',"' .. f .. '":' end
local function add_event(msg, v)
  msg[#msg + 1] = #msg == 1 and '{"type":"build","doc":' or ',{"type":"build","doc":'
  msg[#msg + 1] = v.doc
  for _, f in ipairs(CHANGING) do
    if v[f] then
      msg[#msg + 1] = AS_KEY[f]
      msg[#msg + 1] = v[f]
    end
  end
  msg[#msg + 1] = '}'
end
local function record_flat(v)
  local out = { 'doc', v.doc }
  for _, f in ipairs(CHANGING) do if v[f] then out[#out + 1] = f; out[#out + 1] = v[f] end end
  return out
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

local seq = tonumber(redis.call('GET', SEQ) or '0')
local seq0 = seq
local news, olds = {}, {}
local events = { '[' }
local journals, journal_order, marks, mark_order = {}, {}, {}, {}
-- per ref, the pushed_at (ms) of its newest accepted push: read once, then as this batch moves it
local newest, newest_order = {}, {}
local function newest_of(n)
  local k = n.key .. ' ' .. n.field -- refs hold no spaces
  local e = newest[k]
  if not e then
    e = { key = n.key, field = n.field, value = tonumber(redis.call('HGET', n.key, n.field) or '-1'), moved = false }
    newest[k] = e
  end
  return e
end

local function submit(p)
  local guard, rc = p.guard, p.receipt
  if guard and not guard_holds(guard) then return 'stale' end
  if rc and taken[rc.key] then return 'duplicate' end
  for _, b in ipairs(p.builds) do
    if taken[b.key] then return 'duplicate_build\\t' .. b.id end
  end
  -- A captured push re-sent under a new delivery id: older than the ref's newest accepted one.
  local nw = rc and rc.newest
  if nw then
    local e = newest_of(nw)
    if e.value > nw.value then return 'replayed\\t' .. string.format('%d', e.value) end
  end
  -- per repo+ref of this submission: which new build carries each rule
  local groups, order = {}, {}
  for _, b in ipairs(p.builds) do
    local g = groups[b.rk]
    if not g then
      g = { key = b.rk, repo = b.repo, ref = b.ref, owner = {} }
      groups[b.rk] = g
      order[#order + 1] = g
    end
    for _, r in ipairs(b.rules) do
      if not g.owner[r] then g.owner[r] = b.id end
    end
    local c = cfg(b.repo)
    if p.concurrency then c.conc = p.concurrency end
    if p.cancelSuperseded then c.csup = p.cancelSuperseded end
  end
  local superseded, aborted, records = {}, {}, {}
  for _, g in ipairs(order) do
    local r = ref_state(g.key)
    local keep = {}
    for _, id in ipairs(r.ids) do
      local old = build_of(id)
      local by = old.v.status == QUEUED and replaced_by_rules(g, old.rules)
      if by then
        old.v.status, old.v.supersededBy, old.v.finishedAt = SUPERSEDED, cjson.encode(by), FINISHED
        if old.old then
          olds[#olds + 1] = old
          local c = cfg(g.repo)
          c.olds[#c.olds + 1] = id
        end
        superseded[#superseded + 1] = id
        if not h.events then records[#records + 1] = record_flat(old.v) end
      elseif old.v.status == QUEUED then
        keep[#keep + 1] = id
      end
      if old.v.status ~= QUEUED and old.old then r.gone[#r.gone + 1] = id end
    end
    r.ids = keep
    if lanecfg[g.repo].csup == '1' then
      local act = redis.call('HGETALL', ACTIVE)
      for i = 1, #act, 2 do
        local id = act[i]
        local d = cjson.decode(act[i + 1]).repo == g.repo and status_of(id) == 'running' and doc_of(id)
        if d and d.ref == g.ref and redis.call('HEXISTS', BUILD .. id, '_abort') == 0 then
          local by = replaced_by_rules(g, d.rules)
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
    seq = seq + 1
    -- as text once: Lua formats a number again each time one goes to Redis
    b.seq, b.v = tostring(seq), {}
    for i = b.first, b.first + b.n - 1, 2 do
      local f = A[i]
      if f == 'doc' or CHANGING_SET[f] then b.v[f] = A[i + 1] end
    end
    known[b.id] = b
    taken[b.key] = true
    news[#news + 1] = b
    local r = refs[b.rk]
    r.ids[#r.ids + 1] = b.id
    local c = cfg(b.repo)
    c.new[#c.new + 1] = b
    if publish then add_event(events, b.v) end
  end
  if publish then
    for _, id in ipairs(superseded) do add_event(events, known[id].v) end
  end
  if rc then
    taken[rc.key] = true
    local body = rc.head .. ',"superseded":' .. (#superseded == 0 and '[]' or cjson.encode(superseded)) .. '}'
    redis.call('SET', rc.key, body, 'PX', rc.ttlMs)
    local j = journals[rc.journal.key]
    if not j then
      j = { key = rc.journal.key, cap = rc.journal.cap, entries = {} }
      journals[rc.journal.key] = j
      journal_order[#journal_order + 1] = j
    end
    j.entries[#j.entries + 1] = rc.key
    if rc.mark then
      local m = marks[rc.mark.key]
      if not m then
        m = {}
        marks[rc.mark.key] = m
        mark_order[#mark_order + 1] = rc.mark.key
      end
      m[#m + 1] = rc.mark.field
      m[#m + 1] = rc.mark.value
    end
    if nw then
      local e = newest_of(nw)
      if nw.value > e.value then
        e.value = nw.value
        if not e.moved then
          e.moved = true
          newest_order[#newest_order + 1] = e
        end
      end
    end
  end
  return 'queued\\t' .. table.concat(superseded, ' ') .. '\\t' .. table.concat(aborted, ' '), records
end

local answers, recs = {}, {}
for i, p in ipairs(h.subs) do
  local a, r = submit(p)
  answers[i] = a
  if not h.events then recs[i] = r or {} end
end

-- The net effect. Records first (a new one already in its final state), then the indexes.
local all, by_status = {}, { queued = {}, superseded = {} }
for _, b in ipairs(news) do
  local kv = { unpack(A, b.first, b.first + b.n - 1) }
  if b.v.status ~= QUEUED then
    kv[#kv + 1] = 'status'; kv[#kv + 1] = b.v.status
    kv[#kv + 1] = 'supersededBy'; kv[#kv + 1] = b.v.supersededBy
    kv[#kv + 1] = 'finishedAt'; kv[#kv + 1] = b.v.finishedAt
  end
  kv[#kv + 1] = '_seq'; kv[#kv + 1] = b.seq
  redis.call('HSET', b.key, unpack(kv))
  all[#all + 1] = b.seq; all[#all + 1] = b.id
  local s = b.v.status == QUEUED and by_status.queued or by_status.superseded
  s[#s + 1] = b.seq; s[#s + 1] = b.id
end
local unqueued = {}
for _, b in ipairs(olds) do
  redis.call('HSET', BUILD .. b.id, 'status', b.v.status, 'supersededBy', b.v.supersededBy, 'finishedAt', b.v.finishedAt)
  unqueued[#unqueued + 1] = b.id
  local s = by_status.superseded
  s[#s + 1] = b.seq; s[#s + 1] = b.id
end
if seq > seq0 then
  redis.call('SET', SEQ, seq)
  redis.call('ZADD', ALL, unpack(all))
end
if #unqueued > 0 then redis.call('ZREM', BY_STATUS .. 'queued', unpack(unqueued)) end
for st, s in pairs(by_status) do
  if #s > 0 then redis.call('ZADD', BY_STATUS .. st, unpack(s)) end
end
for _, r in ipairs(ref_order) do
  if #r.gone > 0 then redis.call('SREM', REFQ .. r.key, unpack(r.gone)) end
  local add = {}
  for _, id in ipairs(r.ids) do if not known[id].old then add[#add + 1] = id end end
  if #add > 0 then redis.call('SADD', REFQ .. r.key, unpack(add)) end
end
for _, repo in ipairs(repo_order) do
  local c = lanecfg[repo]
  if c.conc ~= c.conc0 then redis.call('HSET', CONC, repo, c.conc) end
  if c.csup ~= c.csup0 then redis.call('HSET', CSUP, repo, c.csup) end
  if #c.new > 0 then
    local zs, lane = {}, {}
    for _, b in ipairs(c.new) do
      zs[#zs + 1] = b.seq; zs[#zs + 1] = b.id
      if b.v.status == QUEUED then lane[#lane + 1] = b.id end
    end
    redis.call('ZADD', BY_REPO .. repo, unpack(zs))
    if #lane > 0 then redis.call('RPUSH', LANE .. repo, unpack(lane)) end
  end
  for _, id in ipairs(c.olds) do
    redis.call('LREM', LANE .. repo, 1, id)
    release(id)
  end
  ring_offer(repo)
end
for _, j in ipairs(journal_order) do
  redis.call('LPUSH', j.key, unpack(j.entries))
  redis.call('LTRIM', j.key, 0, j.cap - 1)
end
for _, k in ipairs(mark_order) do redis.call('HSET', k, unpack(marks[k])) end
for _, e in ipairs(newest_order) do redis.call('HSET', e.key, e.field, string.format('%d', e.value)) end
if #events > 1 then
  events[#events + 1] = ']'
  redis.call('PUBLISH', h.events, table.concat(events))
end
return { table.concat(answers, '\\n'), dispatch(h.now), recs }
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

/**
 * EVAL/EVALSHA with no keys, written as one flat RESP string. ioredis's own path copies a command's
 * arguments with Array#flat and builds the wire text by repeated `+=`, which for a group commit's
 * few hundred arguments was a measurable share of a delivery's CPU (bench/README.md); one `join`
 * is not.
 */
class ScriptCall extends Command {
  private readonly text: string;
  constructor(name: 'eval' | 'evalsha', script: string, args: (string | number)[]) {
    super(name, [], { replyEncoding: 'utf8' });
    const parts = [`*${args.length + 3}\r\n$${name.length}\r\n${name}\r\n$${Buffer.byteLength(script)}\r\n${script}\r\n$1\r\n0\r\n`];
    for (const a of args) {
      const v = String(a);
      parts.push(`$${Buffer.byteLength(v)}\r\n${v}\r\n`);
    }
    this.text = parts.join('');
  }
  override toWritable(): string {
    return this.text;
  }
}

class Script {
  readonly sha: string;
  readonly src: string;
  constructor(body: string) {
    this.src = PRELUDE + body;
    this.sha = createHash('sha1').update(this.src).digest('hex');
  }
  async run(redis: Redis, args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.sendCommand(new ScriptCall('evalsha', this.sha, args));
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return redis.sendCommand(new ScriptCall('eval', this.src, args));
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
  /** Publish the new and superseded records on this pub/sub channel (instead of answering the superseded ones). */
  events?: string;
  subs: Submission[];
}

/** What became of one submission; nothing changed for it unless `queued`. */
export type SubmissionAnswer =
  | { outcome: 'stale' | 'duplicate' }
  | { outcome: 'duplicate_build'; id: string }
  | { outcome: 'replayed'; newest: number }
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

function idList(spaced: string): string[] {
  return spaced === '' ? [] : spaced.split(' ');
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
    // Flat arguments, in the order the script takes them ('' = absent).
    const args: (string | number)[] = [batch.now, batch.finishedAt, batch.events ?? '', batch.subs.length];
    for (const s of batch.subs) {
      const { guard, receipt } = s;
      args.push(
        s.builds.length,
        s.concurrency ?? '',
        s.cancelSuperseded === undefined ? '' : s.cancelSuperseded ? '1' : '0',
        guard?.key ?? '', guard?.field ?? '', guard?.value ?? '',
        receipt?.key ?? '', receipt?.ttlMs ?? '', receipt?.head ?? '', receipt?.journal.key ?? '', receipt?.journal.cap ?? '',
        receipt?.mark?.key ?? '', receipt?.mark?.field ?? '', receipt?.mark?.value ?? '',
        receipt?.newest?.key ?? '', receipt?.newest?.field ?? '', receipt?.newest?.value ?? '',
      );
      for (const b of s.builds) args.push(b.id, b.repo, b.ref, b.rules.length, ...b.rules, b.fields.length, ...b.fields);
    }
    const [text, next, recs] = (await scripts.submit.run(this.redis, args)) as [string, unknown, string[][][]];
    const answers = text.split('\n').map((line, i): SubmissionAnswer => {
      const [outcome, a = '', b = ''] = line.split('\t');
      if (outcome === 'stale' || outcome === 'duplicate') return { outcome };
      if (outcome === 'duplicate_build') return { outcome, id: a };
      if (outcome === 'replayed') return { outcome, newest: Number(a) };
      // Written by this very script a moment ago: decoded without re-validating (see decodeStoredBuild).
      const supersededRecords: BuildRecord[] = [];
      for (const flat of recs[i] ?? []) {
        const r = decodeStoredBuild(flat);
        if (r) supersededRecords.push(r);
      }
      return { outcome: 'queued', superseded: idList(a), aborted: idList(b), supersededRecords };
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
