--[[
  Assigns a destination number of a channel to an account (its MO messages).
    Input:
      KEYS[1] the channel's numbers (numbers:{channel})
      KEYS[2] the account (acct:{account})
      ARGV[1] number (no leading '+')
      ARGV[2] account
    Output:
      1, or 0 for an unknown account
    Events: none.
]]
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
