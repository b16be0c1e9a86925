--[[
  An API key's (or SMPP user's) token bucket and daily quota, shared by every process.
    limited(lim, n)   takes n from both, or from neither: nil when taken, else
                      {limited = 'rate'|'burst'|'quota', retry_ms = ms}
    server_ms()       the server's clock (read once per run): one for every process
  lim: {bucket key, quota key prefix, rate, burst, quota}. Events: none.
]]
local clock = nil
local function server_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
local function limited(lim, n)
  local at = server_ms()
  -- Checks every limit first, then takes from each: a refusal changes nothing.
  local bucket, qprefix = lim[1], lim[2]
  local rate, burst, quota = tonumber(lim[3]), tonumber(lim[4]), tonumber(lim[5])
  local left = nil
  if rate > 0 then
    if n > burst then return {limited = 'burst', retry_ms = 0} end
    local b = redis.call('HMGET', bucket, 'tokens', 'ts')
    local have, ts = tonumber(b[1] or burst), tonumber(b[2] or at)
    have = math.min(burst, have + math.max(0, at - ts) * rate / 1000)
    if have < n then
      return {limited = 'rate', retry_ms = math.ceil((n - have) * 1000 / rate)}
    end
    left = have - n
  end
  local qk = nil
  if quota > 0 then
    local day = math.floor(at / 86400000)
    qk = qprefix .. day
    if tonumber(redis.call('GET', qk) or '0') + n > quota then
      return {limited = 'quota', retry_ms = (day + 1) * 86400000 - at}
    end
  end
  if left then
    redis.call('HSET', bucket, 'tokens', tostring(left), 'ts', string.format('%d', at))
    redis.call('PEXPIRE', bucket, math.ceil(burst * 1000 / rate) + 1000)
  end
  if qk then
    redis.call('INCRBY', qk, n)
    redis.call('EXPIRE', qk, 2 * 86400)
  end
  return nil
end
