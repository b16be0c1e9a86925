--[[
  The configuration's side of the shards' copies of an account's callback settings (cb:{account},
  read by move() on the messages' slot instead of acct:{account}).
    changed_callback(acct)   after a change of cb_url or cb_events: bumps the account's cb_v
                             and answers {version, '1' if a callback URL is set else '0', the
                             chosen statuses or ''} for the caller to copy (copy_callback.lua)
  A copy is written only when its version is newer than the shard's, so of two concurrent
  changes the later one's copy wins, whichever arrives last.
]]
local function changed_callback(acct)
  local v = redis.call('HINCRBY', acct, 'cb_v', 1)
  local got = redis.call('HMGET', acct, 'cb_url', 'cb_events')
  return {v, got[1] and '1' or '0', got[2] or ''}
end
