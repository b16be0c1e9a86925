--[[
  Takes up to ``want`` tokens from a channel's shared token bucket (its TPS limit).
    Input:
      KEYS[1] the bucket (tps:{channel})
      ARGV[1] now (ms)
      ARGV[2] rate (tokens per second)
      ARGV[3] burst (bucket size)
      ARGV[4] want
    Output:
      {granted, ms until the next token (0 if all were granted)}
    Events: none.
]]
local now, rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                               tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1] or burst), tonumber(b[2] or now)
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', math.max(now, ts))
redis.call('PEXPIRE', KEYS[1], 60000)
local wait = 0
if granted < want then wait = math.ceil((1 - (tokens - math.floor(tokens))) * 1000 / rate) end
return {granted, wait}
