--[[
  Moves messages to the next channel of their route's chain (issue 15, failover). Each one
  still on from_channel and not on the wire (queued, or sending under ``worker``, which gives
  it up) gets: the record's channel and hop (index of the channel in chain), a transition
  'queued' "moved {from} -> {to}: {code} {text}", attempts from 0 (the new channel's own),
  due at once on the new channel. A concatenation ref held on the old channel is freed (no
  part of it reached a handset: only a first part's answer or no bind moves a message).
  Record fields read: chain (written by accept: the channels it fails over along, comma
  separated, its first channel first) and hop (absent: 0).
    Input:
      ARGV[1] now (ms)
      ARGV[2] from channel
      ARGV[3] worker ('': queued messages only)
      ARGV[4] code, ARGV[5] text (why it moves)
      ARGV[6...] message ids
    Output:
      {{id, to channel}...}, {ids with no channel left: they stay where they are}
    Events:
      none per message (a move is not a status change); "{from}|failover" and the
      message's route's "route:{route}|failover" (ROUTE_STAT) counted in the minute's stats.
]]
--- @include "move"
local now, from, worker = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local code, text = ARGV[4], ARGV[5]
local moved, last = {}, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local key = M .. 'm:' .. id
  local f = fetch(key, 'chain', 'hop', 'worker', 'route')
  local here = f.channel == from and (f.status == 'queued' or
    (f.status == 'sending' and worker ~= '' and f.worker == worker))
  if here and f.chain and f.chain ~= '' then
    local chain = {}
    for ch in string.gmatch(f.chain, '[^,]+') do chain[#chain + 1] = ch end
    local hop = tonumber(f.hop or '0')
    local nxt = chain[hop + 2]
    if nxt then
      local tr = appended(f.tr, {'queued', now, 'moved ' .. from .. ' -> ' .. nxt .. ': ' ..
                                 code .. ' ' .. text})
      redis.call('HSET', key, 'status', 'queued', 'tr', tr, 'channel', nxt, 'hop', hop + 1,
                 'attempts', 0, 'next_at', 0, 'err_code', code, 'err_text', text)
      if f.ref then free_ref(key, f, from) end
      due_drop(from, id)
      due_set(nxt, id, now)
      count(from, 'failover', now)
      if f.route and f.route ~= '' then count(ROUTE_STAT .. f.route, 'failover', now) end
      moved[#moved + 1] = {id, nxt}
    else
      last[#last + 1] = id
    end
  elseif here then
    last[#last + 1] = id
  end
end
flush_run()
return {moved, last}
