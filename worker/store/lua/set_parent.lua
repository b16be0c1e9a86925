--[[
  Sets ('' clears) an account's parent. An Admin's explicit choice: ownership becomes 'Admin'.
    Input:
      ARGV[1] account
      ARGV[2] parent ('' clears)
    Output:
      'unknown' (no such account), 'unknown-parent', or 'ok'
    Events: none.
]]
--- @include "keys"
local name, parent = ARGV[1], ARGV[2]
local acct = C .. 'acct:' .. name
if redis.call('EXISTS', acct) == 0 then return 'unknown' end
if parent ~= '' and redis.call('EXISTS', C .. 'acct:' .. parent) == 0 then
  return 'unknown-parent'
end
local cur = redis.call('HGET', acct, 'parent') or ''
if cur ~= '' then redis.call('SREM', C .. 'children:' .. cur, name) end
if parent ~= '' then redis.call('SADD', C .. 'children:' .. parent, name) end
redis.call('HSET', acct, 'parent', parent, 'ownership', 'Admin')
return 'ok'
