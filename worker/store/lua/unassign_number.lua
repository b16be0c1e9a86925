--[[
  Takes a destination number of a channel from its account.
    Input:
      KEYS[1] the channel's numbers (numbers:{channel})
      ARGV[1] number (no leading '+')
    Output:
      0 if it was not assigned, else the version to copy its absence with to the shards'
      cp:numbers:{channel} (includes/copy_version.lua; copy_entries.lua)
    Events: none.
]]
--- @include "copy_version"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
return next_copy_version()
