--[[
  Gives a lease back, only if its owner still holds it.
    Input:
      KEYS[1] the lease
      ARGV[1] owner
    Output:
      1 if released, 0 if the owner no longer held it
    Events: none.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
