package redis

import goredis "github.com/redis/go-redis/v9"

// Every per-conversation script takes the conversation's eight keys, in the order of
// convKeys, so that it can refresh their TTL (ARGV[1], in milliseconds; 0: keep forever).
// They all share the conversation's hash slot. Replies: -1 is an unknown conversation.
//
// A negative ARGV[1] is a light touch (Store.touchTTL: the process refreshed every key of the
// conversation less than touchEvery ago): only the keys the script wrote (touch's arguments,
// indexes in KEYS) get the TTL, and only when they have none (PEXPIRE NX, Redis 7), so that a
// key the script created expires too. A refresh is a write the AOF logs: a light touch of keys
// that have their TTL logs nothing.
const luaTouch = `
local function touch(...)
  local ttl = tonumber(ARGV[1])
  if ttl > 0 then
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
  elseif ttl < 0 then
    for _, i in ipairs({...}) do redis.call('PEXPIRE', KEYS[i], -ttl, 'NX') end
  end
end
`

// createScript: ARGV[2] the conversation's JSON at version 1. Reply {1} when created,
// {0, json} with the stored one otherwise.
var createScript = goredis.NewScript(luaTouch + `
local old = redis.call('HGET', KEYS[1], 'j')
if old then return {0, old} end
redis.call('HSET', KEYS[1], 'v', 1, 'j', ARGV[2])
touch()
return {1}
`)

// putScript: ARGV[2] the expected version, ARGV[3] the JSON at the next version, ARGV[4] the
// wake-up channel, ARGV[5] the conversation id. Reply 1 when stored, 0 on a version conflict, -1
// for an unknown conversation. A put publishes "v<version>:<conversation id>" on the wake-up
// channel, so that the instances caching the conversation drop older versions (cache.go; an
// instance that predates it reads no seq there, and ignores it).
var putScript = goredis.NewScript(luaTouch + `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if tonumber(v) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[2]) + 1, 'j', ARGV[3])
touch(1)
redis.call('PUBLISH', ARGV[4], 'v' .. (tonumber(ARGV[2]) + 1) .. ':' .. ARGV[5])
return 1
`)

// appendScript: ARGV[2] the idempotency key (""), ARGV[3] the role, ARGV[4] and ARGV[5] the
// activity's JSON before and after the seq's seven digits, ARGV[6] the addressees (JSON, or
// ""), ARGV[7] the time (unix ns), ARGV[8] the wake-up channel, ARGV[9] the conversation id,
// ARGV[10] the W3C trace context (bridge.Entry.Trace, ""; field tp, only when set),
// ARGV[11…] the addressed legs. Reply {1, seq} when appended, {0, seq} for a repeated key, {-1}
// for an unknown conversation. The stream id of seq is 0-(seq+1). An append publishes
// "<seq>:<conversation id>" on the wake-up channel, for the other instances' watchers.
var appendScript = goredis.NewScript(luaTouch + `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[2] ~= '' then
  local s = redis.call('HGET', KEYS[3], ARGV[2])
  if s then return {0, tonumber(s)} end
end
local seq = redis.call('XLEN', KEYS[2])
local raw = ARGV[4] .. string.format('%07d', seq) .. ARGV[5]
if ARGV[10] ~= '' then
  redis.call('XADD', KEYS[2], '0-' .. (seq + 1), 'f', ARGV[3], 'a', raw, 't', ARGV[6], 'at', ARGV[7], 'tp', ARGV[10])
else
  redis.call('XADD', KEYS[2], '0-' .. (seq + 1), 'f', ARGV[3], 'a', raw, 't', ARGV[6], 'at', ARGV[7])
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], seq) end
for i = 11, #ARGV do redis.call('HSET', KEYS[4], ARGV[i], seq) end
touch(2, 3, 4)
redis.call('PUBLISH', ARGV[8], seq .. ':' .. ARGV[9])
return {1, seq}
`)

// ackScript: ARGV[2] the leg, ARGV[3] the seq. The cursor only moves forward.
var ackScript = goredis.NewScript(luaTouch + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[5], ARGV[2])
if not cur or tonumber(ARGV[3]) > tonumber(cur) then redis.call('HSET', KEYS[5], ARGV[2], ARGV[3]) end
touch(5)
return 1
`)

// hashScript sets (ARGV[4] = "1") or removes field ARGV[3] of the conversation's hash
// KEYS[ARGV[2]] (value ARGV[5]), for timers and values; ARGV[6…] are more field/value pairs to
// set with it (files: data and content type).
var hashScript = goredis.NewScript(luaTouch + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local k = KEYS[tonumber(ARGV[2])]
if ARGV[4] == '1' then
  redis.call('HSET', k, ARGV[3], ARGV[5])
  for i = 6, #ARGV, 2 do redis.call('HSET', k, ARGV[i], ARGV[i + 1]) end
else
  redis.call('HDEL', k, ARGV[3])
end
touch(tonumber(ARGV[2]))
return 1
`)

// claimScript indexes a leg: KEYS[1] the leg key, ARGV[1] the conversation id, ARGV[2] the TTL
// (ms, 0: none). It sets the key when it is absent and replies with its holder: ARGV[1] when
// the leg is (now) the conversation's, another id otherwise. ARGV[3], when set, is the holder
// to take the leg from (a conversation that does not exist).
var claimScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v or v == ARGV[1] or (ARGV[3] ~= '' and v == ARGV[3]) then
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
  return ARGV[1]
end
return v
`)

// releaseScript deletes KEYS[1] if it still holds ARGV[1].
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// zremIfScript removes member ARGV[1] of the sorted set KEYS[1] if its score is still ARGV[2].
var zremIfScript = goredis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`)

// deleteIfScript deletes a conversation created at version 1 and never changed since (a
// creation that lost its leg), KEYS being its keys.
var deleteIfScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'v') == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.call('DEL', unpack(KEYS))
end
return 0
`)
