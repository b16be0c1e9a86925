--[[
  Extends a lease only if its owner still holds it.
    Input:
      KEYS[1] the lease (bind:{channel}:{kind}:{slot} or wh:lease:{account})
      ARGV[1] owner
      ARGV[2] TTL (ms)
    Output:
      1 if extended, 0 if the lease was lost
    Events: none.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
