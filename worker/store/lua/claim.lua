--[[
  Claims messages for a worker: a message is claimed when it is queued and due, or sending
  under a holder that is dead (or under this worker, its lease passed: a lost reply). Messages
  of channels this worker does not serve are made due for a worker that does (now, or at
  their next_at: a scheduled message or a retry stays not due until then); a submitted
  message whose receipt wait has passed becomes unknown.
    Input:
      ARGV[1] now (ms)
      ARGV[2] lease until (ms): the due time of a claimed message
      ARGV[3] worker
      ARGV[4] served channels, JSON list
      ARGV[5...] message ids
    Output:
      JSON list of claimed messages: [id, channel, to, content, attempts, accepted_at,
      reclaimed (1: its previous holder died), route ('' the message named its channel),
      sched_at, valid_until (ms, 0: none), and its sender only if it has one]
    Events:
      "{id} sending" / "{id} unknown" lines on the events channel (one PUBLISH), webhook
      entries and counters through move().
]]
--- @include "move"
local now, lease, worker = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local served = {}
for _, ch in ipairs(cjson.decode(ARGV[4])) do served[ch] = true end
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = M .. 'm:' .. id
  local f = fetch_all(key)
  local st, ch = f.status, f.channel
  if not st then
    -- Its record expired (retention) while still indexed: nothing is left to send.
    for name in pairs(served) do due_drop(name, id) end
  elseif st == 'submitted' then
    -- Due in the index only once its receipt wait has passed (a re-run job is not due).
    local due = due_at(ch, id)
    if due and tonumber(due) <= now then
      move(key, f, 'unknown', now, 'no delivery receipt in time', {'done_at', now})
    end
  elseif st == 'queued' or st == 'sending' then
    local held = false  -- a claim still standing: by a live worker, or by us within the lease
    if st == 'sending' and f.worker == worker then
      -- Ours: a claim whose reply was lost to a dropped connection is ours to take back once
      -- its lease has passed (the caller passes only ids it has not got in flight; within the
      -- lease a concurrent claim of the same batch must not take it twice).
      held = tonumber(due_at(ch, id) or '0') > now
    elseif st == 'sending' then
      held = redis.call('EXISTS', M .. 'w:' .. (f.worker or '')) == 1
      if held then due_set(ch, id, lease) end
    end
    if held then
      -- left as it is
    elseif not served[ch] then
      due_set(ch, id, math.max(now, tonumber(f.next_at or '0')))
    elseif st == 'sending' or tonumber(f.next_at or '0') <= now then
      -- A claim spends no attempt: the outcome does, when its submit reached the SMSC. Only a
      -- dead holder's claim is counted here, as its submit may have gone out unrecorded.
      local attempts = tonumber(f.attempts or '0')
      if st == 'sending' and f.worker ~= worker then attempts = attempts + 1 end
      move(key, f, 'sending', now, st == 'sending' and 'reclaimed' or
           ('attempt ' .. (attempts + 1)), {'worker', worker, 'attempts', attempts})
      due_set(ch, id, lease)
      out[#out + 1] = {id, ch, f.to, f.content, attempts, f.accepted_at,
                       st == 'sending' and 1 or 0, f.route or '',
                       tonumber(f.sched_at or '0'), tonumber(f.valid_until or '0'),
                       f.sender or nil}
    end
  end
end
flush_run()
return cjson.encode(out)
