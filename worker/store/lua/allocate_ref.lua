--[[
  Allocates a concatenation reference for a message to a destination: a free one (never
  used, or held past its time), held for hold_ms; a re-send keeps its reference.
    Input:
      KEYS[1] the destination's refs in use (ref:{channel}:{to})
      KEYS[2] the message record (m:{id})
      ARGV[1] now (ms)
      ARGV[2] modulo (how many references there are)
      ARGV[3] hold (ms)
      ARGV[4] start (the reference to try first)
    Output:
      the reference, or -1 when all are in use
    Events: none.
]]
local now, modulo, hold, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                                 tonumber(ARGV[4])
local old = redis.call('HGET', KEYS[2], 'ref')
if old then return tonumber(old) end  -- a re-send keeps its reference
for i = 0, math.min(modulo, 512) - 1 do
  local r = (start + i) % modulo
  local until_ms = tonumber(redis.call('HGET', KEYS[1], r) or '0')
  if until_ms < now then
    redis.call('HSET', KEYS[1], r, now + hold)
    redis.call('PEXPIRE', KEYS[1], hold)
    redis.call('HSET', KEYS[2], 'ref', r)
    return r
  end
end
return -1
