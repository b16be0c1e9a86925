--[[
  Status page counters, the failures list and the transitions channel.
    failure(id, channel, status, detail, at)   pushes onto the capped failures list
    count(channel, what, at)      counts one transition, written by flush_run()
    events                        the run's "{id} {status}" lines, published by flush_run()
    flush_run()                   writes the counts and the run's due-index changes
                                  (includes/due.lua) and publishes the events, once per run
  Events: flush_run() publishes on P .. 'events' ("{id} {status}" lines, one message).
]]
--- @include "keys"
--- @include "bounds"
--- @include "due"
local function failure(id, channel, status, detail, at)
  redis.call('LPUSH', M .. 'failures', cjson.encode({id, channel, status, detail, at}))
  redis.call('LTRIM', M .. 'failures', 0, FAILURES_KEPT - 1)
end
-- A script that moves many messages counts them here and writes the sums once at its end
-- (flush_run): one HINCRBY per minute, channel and status, one EXPIRE per minute, instead
-- of both per transition. Its transitions' events go out alike: one PUBLISH per run, a line
-- per transition (each redis.call costs the script more than the command itself).
-- Counted as minute -> channel -> what -> n: no string is built per transition, only per
-- field written.
local counts = {}
local events = {}
local function count(channel, what, at)
  local minute = at - at % 60000
  local m = counts[minute]
  if not m then m = {}; counts[minute] = m end
  local c = m[channel]
  if not c then c = {}; m[channel] = c end
  c[what] = (c[what] or 0) + 1
end
local function flush_run()
  flush_due()
  for minute, m in pairs(counts) do
    local k = M .. 'stats:' .. string.format('%d', minute / 60000)
    for channel, c in pairs(m) do
      for what, n in pairs(c) do redis.call('HINCRBY', k, channel .. '|' .. what, n) end
    end
    redis.call('EXPIRE', k, STATS_TTL_SECONDS)
  end
  counts = {}
  if #events > 0 then
    redis.call('PUBLISH', P .. 'events', table.concat(events, '\n'))
    events = {}
  end
end
