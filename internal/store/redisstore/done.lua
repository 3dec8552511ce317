-- KEYS[1] messages hash, KEYS[2] leases zset; ARGV ticket. Forgets a message.
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
