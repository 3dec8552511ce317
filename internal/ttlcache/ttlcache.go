// Package ttlcache is a size-bounded LRU whose entries also expire, judged
// when they are read. Unlike golang-lru's expirable LRU it starts no
// goroutine: that one ticks every hundredth of its TTL forever, and a cache
// made at every config reload (a store, a directory) would leave one behind
// each time.
package ttlcache

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache maps keys to values for at most ttl each, keeping the size most
// recently used. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	entries *lru.Cache[K, entry[V]]
	ttl     time.Duration
}

type entry[V any] struct {
	value V
	until time.Time
}

// New returns a cache of at most size entries (at least one), each kept for ttl.
func New[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	entries, _ := lru.New[K, entry[V]](max(size, 1)) // only a size below one fails
	return &Cache[K, V]{entries: entries, ttl: ttl}
}

// Get returns key's value if it was added less than ttl ago.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	e, ok := c.entries.Get(key)
	if ok && time.Now().Before(e.until) {
		return e.value, true
	}
	if ok {
		c.entries.Remove(key)
	}
	var zero V
	return zero, false
}

// Add keeps value under key for ttl from now.
func (c *Cache[K, V]) Add(key K, value V) {
	c.entries.Add(key, entry[V]{value: value, until: time.Now().Add(c.ttl)})
}

// Remove forgets key.
func (c *Cache[K, V]) Remove(key K) { c.entries.Remove(key) }

// Purge forgets every key.
func (c *Cache[K, V]) Purge() { c.entries.Purge() }

// Len is how many entries are held, expired ones not yet read included.
func (c *Cache[K, V]) Len() int { return c.entries.Len() }
