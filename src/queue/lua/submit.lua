--- submit: a batch of submissions (those of one event-loop turn), each decided in order as if alone:
--- it stores its new queued records, supersedes older queued builds of the same refs, enqueues, and
--- stores its receipt. The batch is worked out in memory first (the state it reads is read once),
--- then its net effect is written with one command per touched key (each record, receipt, index,
--- lane, ref), not one per submission: a batch of 50 deliveries costs Redis about 3 commands each
--- instead of 30. One dispatch pass after all of them.
--- Per submission it answers a line: 'stale' when its guard does not hold, 'duplicate' when its
--- receipt's key exists, 'duplicate_build<TAB>id' when a build id exists, 'replayed<TAB>ms' when its
--- receipt's push is older than the newest accepted push of its ref (nothing changed for it in
--- these four cases), else 'queued<TAB>superseded ids<TAB>aborted ids' (ids space-separated: they
--- have no whitespace). Answers {the lines joined by newlines, picked, per submission its superseded
--- records as flat hashes (empty when published)}. One string instead of a nested table per
--- submission: the client's reply decoder costs by element (bench/README.md has the figures).
--- Events (h.events, a channel): one message per batch, a JSON array of packed build events (src/store
--- unpackBuildEvent) in the order the submissions made them: each one's new records, queued, then the
--- queued builds it superseded. None of these builds has started (the channel of unstarted builds).
--- Sent only while someone subscribes (PUBSUB NUMSUB/NUMPAT): pub/sub keeps nothing, so a message nobody hears is work for nothing.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

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
  local rkey, ttl, rvalue, jkey, jcap, mkey, mfield, mvalue = take(), take(), take(), take(), take(), take(), take(), take()
  local nkey, nfield, nvalue = take(), take(), take()
  local p = { builds = {} }
  if conc ~= '' then p.concurrency = conc end
  if csup ~= '' then p.cancelSuperseded = csup end
  if gkey ~= '' then p.guard = { key = gkey, field = gfield, value = gvalue } end
  if rkey ~= '' then
    p.receipt = { key = rkey, ttlMs = ttl, value = rvalue, journal = { key = jkey, cap = tonumber(jcap) } }
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

-- CHANGING (the record fields that change after a build is queued) comes with the constants.
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
    if taken[b.key] then return 'duplicate_build\t' .. b.id end
  end
  -- A captured push re-sent under a new delivery id: older than the ref's newest accepted one.
  local nw = rc and rc.newest
  if nw then
    local e = newest_of(nw)
    if e.value > nw.value then return 'replayed\t' .. string.format('%d', e.value) end
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
    redis.call('SET', rc.key, rc.value, 'PX', rc.ttlMs)
    if #superseded > 0 then redis.call('SET', rc.key .. SUPERSEDED_OF, cjson.encode(superseded), 'PX', rc.ttlMs) end
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
  return 'queued\t' .. table.concat(superseded, ' ') .. '\t' .. table.concat(aborted, ' '), records
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
return { table.concat(answers, '\n'), dispatch(h.now), recs }
