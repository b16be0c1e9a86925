--[[
  Takes the first free one of several lease slots.
    Input:
      KEYS[1...] the slots (bind:{channel}:{kind}:{slot}, or the one wh:lease:{account})
      ARGV[1] owner
      ARGV[2] TTL (ms)
    Output:
      the index (0-based) of the slot taken, or -1 when all are held
    Events: none.
]]
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') then return i - 1 end
end
return -1
