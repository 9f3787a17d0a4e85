package view

import "github.com/redis/go-redis/v9"

// seenLua holds the helpers both apply scripts use on an indicator's sorted set of applied event
// ids and record digests. Members are scored by arrival order, taken from the set itself (its
// highest score + 1), so event ids and record digests share one scheme and trimming evicts the
// oldest arrivals whatever their kind; scoring by time would tie within a millisecond (ties are
// trimmed in lexical order) and a counter kept elsewhere could expire before the set.
const seenLua = `
local function nextSeen(seen)
  local top = redis.call('ZREVRANGE', seen, 0, 0, 'WITHSCORES')
  if top[2] then return tonumber(top[2]) + 1 end
  return 1
end
local function trimSeen(seen, seenCap)
  local n = redis.call('ZCARD', seen)
  if n > seenCap then redis.call('ZREMRANGEBYRANK', seen, 0, n - seenCap - 1) end
end
`

// applyScored updates one indicator from a scored event; see the package comment for the keys.
// It returns {1 (new) or 0 (duplicate), 1 when the update created the indicator, then the
// fields the priority is made of (rankFields: score, last_seen, confidence, validated_by,
// sightings)} after the update.
var applyScored = redis.NewScript(seenLua + `
local h, hist, acts, seen, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]
local obs, now, ret = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local histCap, seenCap = tonumber(ARGV[5]), tonumber(ARGV[6])
local function ranked(fresh, created)
  local v = redis.call('HMGET', h, 'score', 'last_seen', 'confidence', 'validated_by', 'sightings')
  return {fresh, created, v[1], v[2], v[3], v[4], v[5]}
end
if redis.call('ZSCORE', seen, id) then
  return ranked(0, 0)
end
local created = redis.call('EXISTS', h) == 0
redis.call('ZADD', seen, nextSeen(seen), id)
trimSeen(seen, seenCap)
local last = tonumber(redis.call('HGET', h, 'last_seen') or '-1')
local first = tonumber(redis.call('HGET', h, 'first_seen') or '-1')
if ARGV[22] ~= '1' then -- a revision is the same sighting, answered better
  redis.call('HINCRBY', h, 'sightings', 1)
  if first < 0 or obs < first then redis.call('HSET', h, 'first_seen', ARGV[2]) end
end
if obs >= last then
  redis.call('HSET', h, 'last_seen', ARGV[2], 'score', ARGV[8], 'severity', ARGV[9], 'tags', ARGV[10],
    'event', ARGV[11], 'type', ARGV[12], 'source', ARGV[13], 'gate', ARGV[14], 'event_id', id,
    'confidence', ARGV[20], 'validated_by', ARGV[21])
  local sticky = {'isp', 'country', 'city', 'asn', 'as_org'}
  for i = 1, #sticky do
    if ARGV[14 + i] ~= '' then redis.call('HSET', h, sticky[i], ARGV[14 + i]) end
  end
  last = obs
end
redis.call('LPUSH', hist, ARGV[7])
redis.call('LTRIM', hist, 0, histCap - 1)
local ttl = math.floor(last + ret - now)
if ttl < 1000 then ttl = 1000 end
redis.call('PEXPIRE', h, ttl)
redis.call('PEXPIRE', hist, ttl)
for _, k in ipairs({acts, seen, counts}) do
  local t = redis.call('PTTL', k)
  if t ~= -2 and t < ttl then redis.call('PEXPIRE', k, ttl) end
end
return ranked(1, created and 1 or 0)
`)

// applyRecord counts an audit record by outcome and, when listed, adds it to an indicator's
// actions, unless its digest was seen. The actions outlive the indicator's other keys by at most
// the retention: a record may arrive before the indicator's first scored event (the two topics
// are read independently).
var applyRecord = redis.NewScript(seenLua + `
local acts, seen, counts = KEYS[1], KEYS[2], KEYS[3]
local now, ret, cap, seenCap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZSCORE', seen, ARGV[1]) then return 0 end
redis.call('ZADD', seen, nextSeen(seen), ARGV[1])
trimSeen(seen, seenCap)
redis.call('HINCRBY', counts, ARGV[7], 1)
if ARGV[8] == '1' then
  redis.call('LPUSH', acts, ARGV[6])
  redis.call('LTRIM', acts, 0, cap - 1)
end
for _, k in ipairs({acts, seen, counts}) do
  local t = redis.call('PTTL', k)
  if t ~= -2 and t < ret then redis.call('PEXPIRE', k, ret) end
end
return 1
`)

// expireIndicator deletes an indicator whose last sighting is past the retention. It returns 1
// when the indicator is gone (deleted now, or expired before) and 0 when it is still current.
var expireIndicator = redis.NewScript(`
local last = redis.call('HGET', KEYS[1], 'last_seen')
if not last then return 1 end
if tonumber(last) + tonumber(ARGV[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
`)
