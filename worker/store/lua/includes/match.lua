--[[
  Receipt correlation, shared by every channel of an SMSC account.
    correlate(smsc, h)   the id of the message receipt h settled, 'held' or 'ignored'
    resume(smsc, raw, sid)   settles a receipt held under sid once sid has been recorded
  Keys (from the prefix): dlr:{smsc}:{form}, held:{smsc}:{form}, heldq:{smsc}, idform:{smsc}.
]]
--- @include "bounds"
--- @include "receipt"
-- Receipt correlation. A receipt h = {forms, twice, state, stat, err, at, ttl} comes with its
-- id's forms by convention ("same"; "hex_to_dec": responses hex, receipts decimal; "dec_to_hex"),
-- looked up in dlr:{smsc}:{form}, shared by every channel of the SMSC account. The first receipt
-- that matches under exactly one of its forms (or spells its id twice: TLV and text) teaches
-- the account's convention, idform:{smsc}, and from then on only its form is used. Until then
-- a receipt whose forms leave its message in doubt is held under every form and queued in
-- heldq:{smsc}, and learning settles the queue: a receipt is never applied on a guess.
local conventions = {}  -- smsc -> its convention or false: read once per script run
local function convention(smsc)
  local c = conventions[smsc]
  if c == nil then
    c = redis.call('GET', M .. 'idform:' .. smsc) or false
    conventions[smsc] = c
  end
  return c
end
local function target_of(smsc, form)
  return redis.call('GET', M .. 'dlr:' .. smsc .. ':' .. form)
end
local function pick(smsc, h)
  -- The form to look h up by and the convention its match proves (nil: none); nil while in
  -- doubt; false when h has no form under the account's convention.
  local by_form, n, only = {}, 0, nil
  for conv, form in pairs(h.forms) do
    if by_form[form] == nil then by_form[form], n, only = conv, n + 1, form end
  end
  if n == 1 then return only end  -- one reading ("5", "msg-7", an explicit format)
  local known = convention(smsc)
  if known then return h.forms[known] or false end
  if h.twice and target_of(smsc, h.forms.same) then return h.forms.same, 'same' end
  local found, hits = nil, 0
  for form in pairs(by_form) do
    if target_of(smsc, form) then found, hits = form, hits + 1 end
  end
  if hits == 1 then return found, by_form[found] end
  return nil
end
local function settle(target, h)
  local sep = string.find(target, '|', 1, true)
  local id, part = string.sub(target, 1, sep - 1), tonumber(string.sub(target, sep + 1))
  if h.state ~= '' then
    local key = M .. 'm:' .. id
    apply_receipt(key, fetch(key, 'nparts'), part, h.state, h.stat, h.err, h.at)
  end
  return id
end
local function unhold(smsc, h, raw, known)
  -- Drop h's held keys; one another receipt of the same form has taken over since stays.
  -- ``known``: a form whose key the caller has just read, holding raw (nil: none).
  for _, form in pairs(h.forms) do
    local k = M .. 'held:' .. smsc .. ':' .. form
    if form == known then
      redis.call('DEL', k)
      known = nil  -- a form two conventions share is listed twice
    elseif redis.call('GET', k) == raw then
      redis.call('DEL', k)
    end
  end
end
local correlate
local function learn(smsc, conv)
  redis.call('SET', M .. 'idform:' .. smsc, conv)
  conventions[smsc] = conv
  local qk = M .. 'heldq:' .. smsc
  local queued = redis.call('LRANGE', qk, 0, -1)
  redis.call('DEL', qk)
  for _, raw in ipairs(queued) do
    local h = cjson.decode(raw)
    unhold(smsc, h, raw)
    correlate(smsc, h)
  end
end
correlate = function(smsc, h)
  -- The id of the message h settled, 'held' or 'ignored' (intermediate and unmatched).
  local form, proves = pick(smsc, h)
  if form == false then return 'ignored' end
  if form == nil then
    if h.state == '' then return 'ignored' end
    local raw = cjson.encode(h)
    for _, f in pairs(h.forms) do
      redis.call('SET', M .. 'held:' .. smsc .. ':' .. f, raw, 'EX', h.ttl)
    end
    local qk = M .. 'heldq:' .. smsc
    redis.call('RPUSH', qk, raw)
    redis.call('LTRIM', qk, -HELD_QUEUE_MAX, -1)  -- bounded if the convention is never learned
    redis.call('EXPIRE', qk, h.ttl)
    return 'held'
  end
  local target = target_of(smsc, form)
  if not target then
    if h.state == '' then return 'ignored' end
    redis.call('SET', M .. 'held:' .. smsc .. ':' .. form, cjson.encode(h), 'EX', h.ttl)
    return 'held'
  end
  local id = settle(target, h)
  if proves then learn(smsc, proves) end
  return id
end
local function resume(smsc, raw, sid)
  -- A receipt held under sid, just recorded as a part's SMSC id: settled unless still in doubt.
  local h = cjson.decode(raw)
  if pick(smsc, h) == nil then return end
  unhold(smsc, h, raw, sid)
  -- Only a receipt held in doubt is queued: two readings of its id while the account's
  -- convention was unknown (learning it empties the queue, and nothing is queued after).
  if not convention(smsc) then
    local first = next(h.forms)
    for _, form in pairs(h.forms) do
      if form ~= h.forms[first] then
        redis.call('LREM', M .. 'heldq:' .. smsc, 1, raw)
        break
      end
    end
  end
  correlate(smsc, h)
end
