-- KEYS[1]: the identity's challenge; ARGV: id, state.
-- A report for a replaced challenge must not touch the new one.
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'delivery', ARGV[2])
end
return 0
