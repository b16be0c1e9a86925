--[[
  Numbers as text, as Redis and cjson write them (%.14g), for the numbers a script passes to
  redis.call or puts into JSON text: an integer goes through integer formatting and each
  value is formatted once per run (now, a lease, a TTL repeat in every message), where the C
  library's floating-point printf took about a tenth of a message script's instructions.
    num(n)    n's text
    text(v)   v's text if it is a number, else v
]]
local num_text = {}
local function num(n)
  local s = num_text[n]
  if not s then
    if n % 1 == 0 and n > -1e14 and n < 1e14 then
      s = string.format('%d', n)
    else
      s = string.format('%.14g', n)
    end
    num_text[n] = s
  end
  return s
end
local function text(v)
  if type(v) == 'number' then return num(v) end
  return v
end
