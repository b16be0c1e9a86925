--[[
  Chooses a callback's statuses and batches (issue 14): fields of the account's hash.
    Input:
      KEYS[1] the account (acct:{account})
      ARGV[1] events: ",a,b," the chosen statuses; "*" every status; "" unchanged
      ARGV[2] max batch (events per POST); "" unchanged; "-" back to the default
      ARGV[3] max batch delay (ms); "" unchanged; "-" back to the default
    Output:
      0 for an unknown account, else {version, url set '1'/'0', chosen statuses or ''}
      for the shards' copies (includes/callback_version.lua; copy_callback.lua)
    Events: none.
]]
--- @include "callback_version"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '*' then redis.call('HDEL', KEYS[1], 'cb_events')
elseif ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'cb_events', ARGV[1]) end
for i, fld in ipairs({'cb_batch', 'cb_batch_ms'}) do
  local value = ARGV[i + 1]
  if value == '-' then redis.call('HDEL', KEYS[1], fld)
  elseif value ~= '' then redis.call('HSET', KEYS[1], fld, value) end
end
return changed_callback(KEYS[1])
