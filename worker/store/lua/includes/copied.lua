--[[
  Reading a shard's entry-by-entry copy of configuration (copy_entries.lua writes them).
    copied(key, field)   the entry's value, or false if it is absent (or marked absent)
]]
local function copied(key, field)
  local got = redis.call('HGET', key, field)
  local value = got and string.match(got, '^%d+|(.*)$')
  if not value or value == '' then return false end
  return value
end
