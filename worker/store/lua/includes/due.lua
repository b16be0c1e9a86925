--[[
  The run's writes to the due indexes pending:{channel}, batched: each channel gets one ZADD
  (per 1000 values: unpack() has a limit) and one ZREM when the run ends, instead of a command
  per message (each redis.call costs the script more than the command itself).
    due_set(channel, id, at)   id due at ``at`` (ms) on its channel's index
    due_drop(channel, id)      id off its channel's index
    due_at(channel, id)        its due time as the run has left it (false: not indexed), what
                               ZSCORE would answer had every write gone out at once
    flush_due()                writes them (flush_run() calls it)
]]
--- @include "keys"
--- @include "num"
local due_changes = {}  -- channel -> {id -> at, or false: dropped}
local function due_of(channel)
  local c = due_changes[channel]
  if not c then c = {}; due_changes[channel] = c end
  return c
end
local function due_set(channel, id, at) due_of(channel)[id] = at end
local function due_drop(channel, id) due_of(channel)[id] = false end
local function due_at(channel, id)
  local c = due_changes[channel]
  local at = c and c[id]
  if at ~= nil then return at end
  return redis.call('ZSCORE', M .. 'pending:' .. channel, id) or false
end
local function flush_due()
  for channel, c in pairs(due_changes) do
    local key, adds, drops = M .. 'pending:' .. channel, {}, {}
    for id, at in pairs(c) do
      if at then
        adds[#adds + 1] = text(at)
        adds[#adds + 1] = id
      else
        drops[#drops + 1] = id
      end
    end
    for i = 1, #adds, 1000 do
      redis.call('ZADD', key, unpack(adds, i, math.min(i + 999, #adds)))
    end
    for i = 1, #drops, 1000 do
      redis.call('ZREM', key, unpack(drops, i, math.min(i + 999, #drops)))
    end
  end
  due_changes = {}
end
