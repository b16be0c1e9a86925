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
  out[i] = correlate(r.smsc, {forms = r.forms, twice = r.twice, state = r.state, stat = r.stat,
                              err = r.err, at = r.at, ttl = held_ttl})
end
flush_run()
return cjson.encode(out)
