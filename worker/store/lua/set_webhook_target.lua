--[[
  Sets ('' clears) one of an account's webhook URLs: its callback, or its inbound URL for a
  channel; the first URL of an account (or a rotation) sets its signing secret.
    Input:
      KEYS[1] the account (acct:{account})
      KEYS[2] the served accounts (wh:accounts)
      KEYS[3] the channel's inbound index (inbound:{channel}); absent for the callback
      ARGV[1] field (cb_url or in:{channel})
      ARGV[2] url ('' clears)
      ARGV[3] account
      ARGV[4] new secret
      ARGV[5] rotate (1/0)
    Output:
      false for an unknown account, else {the secret if it was set now, else ''}, and after
      it, for the callback, its version, '1'/'0' (URL set) and chosen statuses or '' for the
      shards' copies (includes/callback_version.lua; copy_callback.lua), for an inbound URL
      the version to copy the channel's entry of the account with to the shards'
      cp:inbound:{channel} (includes/copy_version.lua; copy_entries.lua)
    Events: none.
]]
--- @include "callback_version"
--- @include "copy_version"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local fld, url, acct = ARGV[1], ARGV[2], ARGV[3]
local secret = ''
if url == '' then
  redis.call('HDEL', KEYS[1], fld)
  if KEYS[3] then redis.call('HDEL', KEYS[3], acct) end
else
  redis.call('HSET', KEYS[1], fld, url)
  if KEYS[3] then redis.call('HSET', KEYS[3], acct, url) end
  redis.call('SADD', KEYS[2], acct)
  if ARGV[5] == '1' or not redis.call('HGET', KEYS[1], 'cb_secret') then
    redis.call('HSET', KEYS[1], 'cb_secret', ARGV[4])
    secret = ARGV[4]
  end
end
if fld ~= 'cb_url' then return {secret, next_copy_version()} end
local state = changed_callback(KEYS[1])
return {secret, state[1], state[2], state[3]}
