--[[
  Where an account's webhook event goes: the stream of its message's shard, so that every
  event of one message (or MO message) is in one stream, in order, and several webhooks
  processes can share a busy account by shard (keys.webhook_shard() says the same in Python).
    webhook_stream(account, id)   wh:{account}:{shard}, shard = first 16 bits of SHA-1(id)
                                  modulo WH_SHARDS
]]
--- @include "keys"
local function webhook_stream(account, id)
  local shard = tonumber(string.sub(redis.sha1hex(id), 1, 4), 16) % WH_SHARDS
  return M .. 'wh:' .. account .. ':' .. shard
end
