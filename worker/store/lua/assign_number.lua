--[[
  Assigns a destination number of a channel to an account (its MO messages).
    Input:
      KEYS[1] the channel's numbers (numbers:{channel})
      KEYS[2] the account (acct:{account})
      ARGV[1] number (no leading '+')
      ARGV[2] account
    Output:
      0 for an unknown account, else the version to copy the entry with to the shards'
      cp:numbers:{channel} (includes/copy_version.lua; copy_entries.lua)
    Events: none.
]]
--- @include "copy_version"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return next_copy_version()
