-- KEYS[1] messages hash, KEYS[2] leases zset; ARGV ticket, sealed message,
-- lease end (ms), how long an idle journal is kept (ms). Keeps a message with
-- its lease in one step.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
