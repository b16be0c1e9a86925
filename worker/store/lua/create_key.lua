--[[
  Creates an API key record, and its account if new.
    Input:
      ARGV[1] the secret's hash
      ARGV[2] fields, JSON object (with id and account)
      ARGV[3] parent ('': unchanged)
      ARGV[4] owner ('': any account; else the account must be new or owner's child)
      ARGV[5] now (ms)
    Output:
      'ok', 'exists' (the hash or the key id is taken) or 'forbidden'
    Events: none.
]]
--- @include "keys"
local h, f, parent, owner = ARGV[1], cjson.decode(ARGV[2]), ARGV[3], ARGV[4]
local acct = C .. 'acct:' .. f.account
local known = redis.call('EXISTS', acct) == 1
local cur = redis.call('HGET', acct, 'parent') or ''
if owner ~= '' then
  if known and cur ~= owner then return 'forbidden' end
  parent = owner
end
local kk = C .. 'key:' .. h
if redis.call('EXISTS', kk) == 1 or redis.call('HEXISTS', C .. 'keys', f.id) == 1 then
  return 'exists'
end
if not known then
  redis.call('HSET', acct, 'parent', '', 'created_at', ARGV[5],
             'ownership', owner ~= '' and 'Partner' or 'Admin')
end
if parent ~= '' and parent ~= cur then
  if cur ~= '' then redis.call('SREM', C .. 'children:' .. cur, f.account) end
  redis.call('HSET', acct, 'parent', parent)
  redis.call('SADD', C .. 'children:' .. parent, f.account)
  if owner == '' then redis.call('HSET', acct, 'ownership', 'Admin') end
end
local flat = {}
for k, v in pairs(f) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', kk, unpack(flat))
redis.call('HSET', C .. 'keys', f.id, h)
return 'ok'
