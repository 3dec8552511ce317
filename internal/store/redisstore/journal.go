package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
)

// A journal keeps every code email a node accepted until it is delivered
// or given up, so that kill -9 of that node loses none: a hash of sealed
// messages by ticket, and a sorted set of the tickets by the time their
// holder's lease ends. The holder renews its lease while it works on a
// message; any node claims the messages whose lease ran out. Both keys
// share one Cluster hash tag, so every script touches one slot.
//
// Journals are named: only queues that can deliver each other's messages
// (the same mailer, the same keys to open them) share one. Both keys expire
// a day after the journal was last written to, so a journal nobody uses any
// more (a mailer's settings changed) goes away with its stale codes.

// journalIdle is how long a journal nobody writes to is kept.
const journalIdle = 24 * time.Hour

func (s *Store) journalKeys(name string) []string {
	tag := s.prefix + "{journal:" + name + "}"
	return []string{tag + ":messages", tag + ":leases"}
}

// Keep stores a sealed message in journal name under a new ticket, held
// until until.
func (s *Store) Keep(ctx context.Context, name string, sealed []byte, until time.Time) (string, error) {
	ticket := flow.RandomToken()
	if err := keep.Run(ctx, s.rdb, s.journalKeys(name), ticket, sealed, ms(until), journalIdle.Milliseconds()).Err(); err != nil {
		return "", fmt.Errorf("keeping the message in the journal: %w", err)
	}
	return ticket, nil
}

// Renew holds tickets of journal name until until; tickets already done are left alone.
func (s *Store) Renew(ctx context.Context, name string, tickets []string, until time.Time) error {
	if len(tickets) == 0 {
		return nil
	}
	members := make([]redis.Z, len(tickets))
	for i, t := range tickets {
		members[i] = redis.Z{Score: float64(ms(until)), Member: t}
	}
	return s.rdb.ZAddXX(ctx, s.journalKeys(name)[1], members...).Err()
}

// Done removes ticket's message from journal name: delivered, or given up for good.
func (s *Store) Done(ctx context.Context, name, ticket string) error {
	return done.Run(ctx, s.rdb, s.journalKeys(name), ticket).Err()
}

// Claim takes up to max messages of journal name whose lease ended before now, holding
// them until until: one script, so two nodes never claim the same one.
func (s *Store) Claim(ctx context.Context, name string, now, until time.Time, max int) (tickets []string, sealed [][]byte, err error) {
	res, err := claim.Run(ctx, s.rdb, s.journalKeys(name), ms(now), ms(until), max).Slice()
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(res); i += 2 {
		t, _ := res[i].(string)
		m, _ := res[i+1].(string)
		tickets, sealed = append(tickets, t), append(sealed, []byte(m))
	}
	return tickets, sealed, nil
}

// JournalLen is how many messages journal name holds, for every node.
func (s *Store) JournalLen(ctx context.Context, name string) (int64, error) {
	return s.rdb.ZCard(ctx, s.journalKeys(name)[1]).Result()
}
