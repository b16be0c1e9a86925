--[[
  Correlates delivery receipts with message parts (see includes/match.lua) and applies them.
    Input:
      ARGV[1] held receipt TTL (s)
      ARGV[2] receipts, JSON: [{smsc, forms, twice, state, stat, err, at}]
    Output:
      JSON list, per receipt: the message id, 'held', or 'ignored' (intermediate and
      unmatched)
    Events:
      a line per transition on the events channel (one PUBLISH), webhook entries and
      counters through move().
]]
--- @include "match"
local held_ttl = tonumber(ARGV[1])
local out = {}
for i, r in ipairs(cjson.decode(ARGV[2])) do
  r.ttl = held_ttl  -- r is the receipt h correlate() takes (and holds: its smsc is kept too)
  out[i] = correlate(r.smsc, r)
end
flush_run()
return cjson.encode(out)
