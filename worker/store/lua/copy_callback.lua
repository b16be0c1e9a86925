--[[
  Writes a shard's copy of an account's callback settings, which move() reads instead of the
  account's record (on the configuration's slot), unless the copy is as new already: safe to
  run again, and an older copy arriving late changes nothing.
    Input:
      KEYS[1] the copy (cb:{account}) on the shard's tag
      ARGV[1] version: the account's cb_v when the settings were read (0: never changed since
              versions exist)
      ARGV[2] '1' if a callback URL is set, else '0'
      ARGV[3] the chosen statuses (",delivered,failed,"), '' every one
    Output:
      1 if written, 0 if the copy had this version or a newer one
    Events: none.
]]
local v = tonumber(ARGV[1])
local have = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if v <= have then return 0 end
local fields = {'v', ARGV[1]}
if ARGV[2] == '1' then fields[#fields + 1] = 'url'; fields[#fields + 1] = '1' end
if ARGV[3] ~= '' then fields[#fields + 1] = 'events'; fields[#fields + 1] = ARGV[3] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))
return 1
