--[[
  Writes entries of a shard's copy of a configuration hash or set (cp:numbers:{channel},
  cp:inbound:{channel}, cp:smpp:accounts: what record_mo.lua reads instead of numbers:,
  inbound: and smpp:accounts on the configuration's slot). Each entry is "{version}|{value}"
  ('' value: absent) and is written only over an older version, so an older copy arriving late
  changes nothing and running it again is harmless.
    Input:
      KEYS[1] the copy
      ARGV[1] version (copyv when the entries were read or changed)
      ARGV[2] 'all': the entries are the whole source (a reconcile), so every other entry
              older than the version is marked absent; 'some': only these
      ARGV[3..] field, value pairs (value '' : absent)
    Output:
      how many entries were written
    Events: none.
]]
local v, all = tonumber(ARGV[1]), ARGV[2] == 'all'
local function older(field)
  local got = redis.call('HGET', KEYS[1], field)
  return tonumber(got and string.match(got, '^(%d+)|') or '-1') < v
end
local written, given = 0, {}
for i = 3, #ARGV, 2 do
  given[ARGV[i]] = true
  if older(ARGV[i]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. '|' .. ARGV[i + 1])
    written = written + 1
  end
end
if all then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not given[field] and older(field) then
      redis.call('HSET', KEYS[1], field, ARGV[1] .. '|')
      written = written + 1
    end
  end
end
return written
