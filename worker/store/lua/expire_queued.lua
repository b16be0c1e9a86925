--[[
  One pass of the expiry sweep over a channel that has no bind up (none of its messages can
  be claimed, so no claim would ever find them too old): from rank ``start`` of its due index
  (lowest due time first), at most ``limit`` entries that are due, it fails as Expired those
  still queued and accepted more than max_age_ms ago. Only 'queued' moves: a claimed message
  is its holder's (or, once its holder is dead, the next claim's) to settle. A scheduled
  message's age counts from its time (sched_at); one whose validity has ended (valid_until)
  fails as Expired whatever its age.
    Input:
      ARGV[1] now (ms)
      ARGV[2] channel
      ARGV[3] max age (ms)
      ARGV[4] start (rank)
      ARGV[5] limit
      ARGV[6] text (err_text of the failures at max age)
      ARGV[7] text (err_text of the failures at the end of their validity)
    Output:
      {failed ids, next start}: next start is 0 once it reached an entry not yet due or the
      end of the index, else the rank after the entries it read and left (a later pass goes
      on from there, so entries it cannot move never hide the ones behind them).
    Events:
      "{id} failed" lines on the events channel (one PUBLISH), webhook entries, counters and
      the failures list through move().
]]
--- @include "move"
local now, ch, max_age = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local start, limit, text, invalid = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local pk = M .. 'pending:' .. ch
local got = redis.call('ZRANGE', pk, start, start + limit - 1, 'WITHSCORES')
local failed, left, ended = {}, 0, #got < 2 * limit
for i = 1, #got, 2 do
  local id = got[i]
  if tonumber(got[i + 1]) > now then
    ended = true
    break
  end
  local key = M .. 'm:' .. id
  local f = fetch(key, 'accepted_at', 'sched_at', 'valid_until')
  local why = nil
  if f.status == 'queued' then
    if f.valid_until and now >= tonumber(f.valid_until) then
      why = invalid
    elseif now - tonumber(f.sched_at or f.accepted_at or now) > max_age then
      why = text
    end
  end
  if not f.status then
    due_drop(ch, id)  -- its record expired (retention) while still indexed
  elseif why and move(key, f, 'failed', now, 'Expired ' .. why,
                      {'done_at', now, 'err_code', 'Expired', 'err_text', why}) then
    failed[#failed + 1] = id
  else
    left = left + 1
  end
end
flush_run()
return {failed, ended and 0 or start + left}
