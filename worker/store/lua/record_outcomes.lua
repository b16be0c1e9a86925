--[[
  Records submit results for a batch of messages: submitted (with its parts' SMSC ids mapped
  in dlr:{smsc}:{id} and receipts that beat the response settled), queued for a retry, or
  final. An attempted outcome (its submit reached the SMSC) spends one attempt.
    Input:
      ARGV[1] now (ms)
      ARGV[2] receipt map TTL (s)
      ARGV[3] outcomes, JSON: [{id, channel, smsc, ids, status, code, text, retry_at,
              attempted, receipt_wait}]
    Output:
      how many outcomes were applied (the lifecycle allowed their move)
    Events:
      a line per transition on the events channel (one PUBLISH), webhook entries and
      counters through move().
]]
--- @include "move"
--- @include "match"
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local applied = 0
for _, o in ipairs(cjson.decode(ARGV[3])) do
  local key = M .. 'm:' .. o.id
  local f = fetch(key, 'attempts')
  -- From 'sending' the lifecycle allows every outcome, so the attempt a submit that reached
  -- the SMSC spends is written by the move itself.
  local spent = {}
  if o.attempted and f.status == 'sending' then
    spent = {'attempts', tonumber(f.attempts or '0') + 1}
  end
  if o.status == 'submitted' then
    local extra = {'submitted_at', now, 'smsc_ids', table.concat(o.ids, ','), 'nparts', #o.ids,
                   unpack(spent)}
    if o.code ~= '' then  -- accepted, with a caveat (a part without an SMSC id)
      extra[#extra + 1], extra[#extra + 2] = 'err_code', o.code
      extra[#extra + 1], extra[#extra + 2] = 'err_text', o.text
    end
    if move(key, f, 'submitted', now, table.concat(o.ids, ','), extra) then
      applied = applied + 1
      if o.receipt_wait > 0 then  -- due again if no receipt settles it in time: unknown
        due_set(o.channel, o.id, now + o.receipt_wait)
      else
        due_drop(o.channel, o.id)
      end
      for part, sid in ipairs(o.ids) do
        -- an empty id (the SMSC gave none we could read) must not catch other receipts
        if sid ~= '' then
          redis.call('SET', M .. 'dlr:' .. o.smsc .. ':' .. sid, o.id .. '|' .. num(part - 1),
                     'EX', num(ttl))
        end
      end
      -- Receipts that beat the response, once every part is mapped (one may prove the
      -- convention and settle others); they re-read the record, so f is not used after this.
      for _, sid in ipairs(o.ids) do
        local held = sid ~= '' and redis.call('GET', M .. 'held:' .. o.smsc .. ':' .. sid)
        if held then resume(o.smsc, held, sid) end
      end
    end
  elseif o.status == 'queued' then
    if move(key, f, 'queued', now, o.code .. ' ' .. o.text,
            {'next_at', o.retry_at, 'err_code', o.code, 'err_text', o.text, unpack(spent)}) then
      applied = applied + 1
      due_set(o.channel, o.id, o.retry_at)
    end
  else
    if move(key, f, o.status, now, o.code .. ' ' .. o.text,
            {'done_at', now, 'err_code', o.code, 'err_text', o.text, unpack(spent)}) then
      applied = applied + 1  -- move() dropped it from its due index: it is final
    end
  end
end
flush_run()
return applied
