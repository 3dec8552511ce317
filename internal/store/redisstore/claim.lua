-- KEYS[1] messages hash, KEYS[2] leases zset; ARGV now, until (ms), max.
-- Claims up to max messages whose lease ended, holding them until `until`;
-- a lease without its message is dropped.
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, ticket in ipairs(due) do
  local msg = redis.call('HGET', KEYS[1], ticket)
  if msg then
    redis.call('ZADD', KEYS[2], ARGV[2], ticket)
    out[#out + 1] = ticket
    out[#out + 1] = msg
  else
    redis.call('ZREM', KEYS[2], ticket)
  end
end
return out
