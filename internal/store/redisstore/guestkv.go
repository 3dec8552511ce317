package redisstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// GuestStorage is the key-value storage of the guest directory (records,
// their index, passkey owners) in Redis, for gateways whose store is
// Redis: the nodes then share their guests where they share everything
// else, and need no shared file system.
//
// Keys are "<prefix>dir:<key>"; locks are "<prefix>lock:<name>", held
// with a random token, kept alive while held and gone 30 s after a holder
// dies.
type GuestStorage struct {
	rdb    redis.UniversalClient
	prefix string

	mu    sync.Mutex
	held  map[string]heldLock
	label string
}

type heldLock struct {
	token string
	stop  chan struct{}
}

const (
	lockTTL     = 30 * time.Second
	lockRefresh = 10 * time.Second
	lockPoll    = 5 * time.Millisecond
	listBatch   = 1000
)

var (
	unlock  = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
	refresh = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
)

// GuestStorage returns the store's storage for the guest directory.
func (s *Store) GuestStorage() *GuestStorage {
	return &GuestStorage{rdb: s.rdb, prefix: s.prefix, held: map[string]heldLock{},
		label: fmt.Sprintf("redis %p %s", s.rdb, s.prefix)}
}

// String names the storage: stores on one client (one set of connection
// settings, pooled across reloads) and prefix share a directory.
func (g *GuestStorage) String() string { return g.label }

func (g *GuestStorage) key(k string) string     { return g.prefix + "dir:" + k }
func (g *GuestStorage) lockKey(k string) string { return g.prefix + "lock:" + k }

// Lock waits until it holds name, or ctx ends.
func (g *GuestStorage) Lock(ctx context.Context, name string) error {
	token := rand.Text()
	for {
		ok, err := g.rdb.SetNX(ctx, g.lockKey(name), token, lockTTL).Result()
		if err != nil {
			return fmt.Errorf("locking %s in Redis: %w", name, err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the lock on %s: %w", name, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	stop := make(chan struct{})
	g.mu.Lock()
	g.held[name] = heldLock{token, stop}
	g.mu.Unlock()
	go g.keepAlive(name, token, stop)
	return nil
}

// keepAlive extends a held lock, so a long rebuild keeps it while a dead
// holder's lapses.
func (g *GuestStorage) keepAlive(name, token string, stop chan struct{}) {
	t := time.NewTicker(lockRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			refresh.Run(context.Background(), g.rdb, []string{g.lockKey(name)}, token, lockTTL.Milliseconds())
		}
	}
}

// Unlock releases name if this storage still holds it.
func (g *GuestStorage) Unlock(ctx context.Context, name string) error {
	g.mu.Lock()
	h, ok := g.held[name]
	delete(g.held, name) // before the release: the next holder may be in this process
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("unlocking %s: not held", name)
	}
	close(h.stop)
	return unlock.Run(ctx, g.rdb, []string{g.lockKey(name)}, h.token).Err()
}

// Store writes value at key.
func (g *GuestStorage) Store(ctx context.Context, key string, value []byte) error {
	return g.rdb.Set(ctx, g.key(key), value, 0).Err()
}

// Load reads key; a missing key is fs.ErrNotExist.
func (g *GuestStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := g.rdb.Get(ctx, g.key(key)).Bytes()
	if err == redis.Nil {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return v, err
}

// Delete removes key.
func (g *GuestStorage) Delete(ctx context.Context, key string) error {
	return g.rdb.Del(ctx, g.key(key)).Err()
}

// List returns the keys under dir: its children, or with recursive every
// key below. It scans the keyspace, which the directory does only to
// rebuild an index.
func (g *GuestStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	under := g.key(strings.TrimSuffix(dir, "/") + "/")
	pattern := globEscaper.Replace(under) + "*"
	var keys []string
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, listBatch).Iterator()
		for iter.Next(ctx) {
			rest := strings.TrimPrefix(iter.Val(), under)
			if !recursive && strings.Contains(rest, "/") {
				continue
			}
			mu.Lock()
			keys = append(keys, strings.TrimPrefix(iter.Val(), g.prefix+"dir:"))
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cluster, ok := g.rdb.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, g.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s in Redis: %w", dir, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
	}
	return keys, nil
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
