--- Shared by the lane scripts (src/queue/lua/*.lua): reading and writing build records, the
--- per-repository lanes and the fair ring, slots, and the dispatch pass that moves the next builds
--- towards BullMQ. The key names (BUILD, LANE, RING, …) come from src/queue/scripts.ts, the one place
--- that names them, as constants ahead of the script.
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
