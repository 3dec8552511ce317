-- KEYS[1]: an identity's challenge from one browser; ARGV: id.
-- Cancels that challenge alone: a newer one under the same key stays.
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
