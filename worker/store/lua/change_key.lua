--[[
  Enables, disables, deletes or rotates an API key, or sets its senders.
    Input:
      ARGV[1] op: enable, disable, delete, rotate or senders
      ARGV[2] key id
      ARGV[3] the new secret's hash (rotate), or the senders, comma separated ('' none)
      ARGV[4] now (ms)
    Output:
      1, or 0 for an unknown key
    Events: none.
]]
--- @include "keys"
local op, id = ARGV[1], ARGV[2]
local h = redis.call('HGET', C .. 'keys', id)
if not h then return 0 end
local kk = C .. 'key:' .. h
if redis.call('EXISTS', kk) == 0 then
  redis.call('HDEL', C .. 'keys', id)
  return 0
end
if op == 'delete' then
  redis.call('DEL', kk, C .. 'bucket:' .. id)
  redis.call('HDEL', C .. 'keys', id)
elseif op == 'rotate' then
  local nk = C .. 'key:' .. ARGV[3]
  redis.call('RENAME', kk, nk)
  redis.call('HSET', nk, 'rotated_at', ARGV[4])
  redis.call('HSET', C .. 'keys', id, ARGV[3])
elseif op == 'senders' then
  if ARGV[3] == '' then
    redis.call('HDEL', kk, 'senders')
  else
    redis.call('HSET', kk, 'senders', ARGV[3])
  end
else
  redis.call('HSET', kk, 'enabled', op == 'enable' and '1' or '0')
end
return 1
