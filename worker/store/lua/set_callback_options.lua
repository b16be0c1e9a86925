--[[
  Chooses a callback's statuses and batches (issue 14): fields of the account's hash.
    Input:
      KEYS[1] the account (acct:{account})
      ARGV[1] events: ",a,b," the chosen statuses; "*" every status; "" unchanged
      ARGV[2] max batch (events per POST); "" unchanged
      ARGV[3] max batch delay (ms); "" unchanged
    Output:
      0 for an unknown account, else 1
    Events: none.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '*' then redis.call('HDEL', KEYS[1], 'cb_events')
elseif ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'cb_events', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'cb_batch', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'cb_batch_ms', ARGV[3]) end
return 1
