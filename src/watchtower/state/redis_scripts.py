"""The Lua scripts RedisStore runs, each one round trip that other workers see whole.

Above each: what it takes (KEYS, ARGV) and returns. Plain text: nothing here imports redis.
"""

# KEYS: ACTIVE, INDEX, state keys..., root keys...; ARGV: ttl_ms, len(key head), len(key tail),
# number of states, root ttl_ms, payloads..., the roots' values as one JSON list (an argument
# costs redis-py ~1 us to pack). Everything per thread comes from its key and payload (see
# state_codec.encode_state): few arguments to pack. Roots are written whatever the
# compare-and-set says.
# Returns {threads held, conflicting tids...}.
SAVE = """
local ttl, head, tail = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local states, root_ttl = tonumber(ARGV[4]), ARGV[5]
local out = {0}
for i = 3, states + 2 do
  local key, payload = KEYS[i], ARGV[i + 3]
  local version, active, seen = string.match(payload, '^%[(%d+),"%x+",([01]),([^,]+),')
  local tid = string.sub(key, head + 1, -tail - 1)
  local stored = string.match(redis.call('GETRANGE', key, 0, 23), '^%[(%d+)')
  if (tonumber(stored) or 0) == tonumber(version) - 1 then
    redis.call('SET', key, payload, 'PX', ttl)
    redis.call('ZADD', KEYS[2], seen, tid)
    if active == '1' then
      redis.call('SADD', KEYS[1], tid)
    else
      redis.call('SREM', KEYS[1], tid)
    end
  else
    out[#out + 1] = tid
  end
end
local roots = cjson.decode(ARGV[states + 6])
for i = states + 3, #KEYS do
  redis.call('SET', KEYS[i], roots[i - states - 2], 'PX', root_ttl)
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
out[1] = redis.call('ZCARD', KEYS[2])
return out
"""

# KEYS: ACTIVE, INDEX, state keys...; ARGV: now, ttl seconds (or '' to drop unconditionally:
# the size cap), tids... Expiry keeps a thread saved meanwhile with a later last_seen, and one
# with an open or pending episode: it must resolve, not vanish (see RedisStore.expire).
DROP = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local dropped = 0
for i = 3, #KEYS do
  local tid = ARGV[i]
  local seen = tonumber(redis.call('ZSCORE', KEYS[2], tid))
  local idle = ttl == nil or (seen and seen + ttl <= now
    and redis.call('SISMEMBER', KEYS[1], tid) == 0)
  if seen and idle then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[2], tid)
    redis.call('SREM', KEYS[1], tid)
    dropped = dropped + 1
  end
end
return dropped
"""

# KEYS: root keys. Returns {key's position, value, PTTL in ms} per root found: the wall
# deadline of a root looked up here comes from Redis, not from when it was asked for. Nothing
# for a miss: most of a batch's own ids (the repeat check) are, and redis-py parses a reply
# item in ~4 us.
LOOKUP = """
local out = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    out[#out + 1] = i
    out[#out + 1] = value
    out[#out + 1] = redis.call('PTTL', KEYS[i])
  end
end
return out
"""
