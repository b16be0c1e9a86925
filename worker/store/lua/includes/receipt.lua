--[[
  Delivery receipts applied to a message record.
    combine(key, nparts, part, state)   the message's state once every part has a receipt
                      state (the worst part names it), nil while one is missing
    apply_receipt(key, f, part, state, stat, err, at)   records a part's receipt, and settles
                      the message (through move()) once every part has one
]]
--- @include "move"
local function combine(key, nparts, part, state)
  -- Every part needs a receipt state; ``part`` has just got ``state`` (not yet written).
  local got = {}
  if nparts ~= 1 or part ~= 0 then
    local names = {}
    for i = 0, nparts - 1 do names[i + 1] = 'p' .. i end
    got = redis.call('HMGET', key, unpack(names))
  end
  local worst = 'delivered'
  for i = 0, nparts - 1 do
    local s = got[i + 1]
    if i == part then s = state end
    if not s then return nil end
    if rank[s] > rank[worst] then worst = s end
  end
  return worst
end
local function apply_receipt(key, f, part, state, stat, err, at)
  -- f: from fetch(key, 'nparts'). The receipt's fields are written by the move when it
  -- settles the message, else on their own (also when the record is gone or already final).
  local mine = {'p' .. part, state, 'dlr_stat', stat, 'dlr_err', err}
  local final = combine(key, tonumber(f.nparts or '1'), part, state)
  if final and move(key, f, final, at, 'stat:' .. stat .. ' err:' .. err,
                    {'done_at', at, unpack(mine)}) then
    return
  end
  redis.call('HSET', key, unpack(mine))
  f[mine[1]], f.dlr_stat, f.dlr_err = state, stat, err
end
