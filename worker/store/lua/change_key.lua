--[[
  Enables, disables, deletes or rotates an API key.
    Input:
      ARGV[1] op: enable, disable, delete or rotate
      ARGV[2] key id
      ARGV[3] the new secret's hash (rotate)
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
else
  redis.call('HSET', kk, 'enabled', op == 'enable' and '1' or '0')
end
return 1
