-- KEYS[1]: the identity's challenge; ARGV: id, code hash, now (ms).
-- Returns {result, fields}: 1 matched (deleted), 2 mismatched (counted),
-- 3 exhausted (deleted), 4 gone. The hashes compared are HMACs under a key
-- the client never sees, so a timing difference tells an attacker nothing.
local c = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
if f.id ~= ARGV[1] or tonumber(f.expires) <= tonumber(ARGV[3]) then
  return {4, {}}
end
if f.hash == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return {1, c}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
for i = 1, #c, 2 do
  if c[i] == 'attempts' then c[i + 1] = tostring(attempts) end
end
if attempts >= tonumber(f.max) then
  redis.call('DEL', KEYS[1])
  return {3, c}
end
return {2, c}
