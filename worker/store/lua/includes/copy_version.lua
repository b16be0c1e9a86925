--[[
  The configuration's side of the shards' entry-by-entry copies (cp:numbers:{channel},
  cp:inbound:{channel}, cp:smpp:accounts, which record_mo.lua reads on the messages' slot).
    next_copy_version()   after a change of an entry of numbers:, inbound: or smpp:accounts:
                          the version the caller copies it with (copy_entries.lua); one counter
                          (copyv) for all, so a reconcile reads every entry at one version
]]
--- @include "keys"
local function next_copy_version()
  return redis.call('INCR', C .. 'copyv')
end
