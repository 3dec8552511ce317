package emailotp

import (
	"io"

	"github.com/caddyserver/caddy/v2"
)

// pooled holds a value in a caddy.UsagePool: it lives as long as some loaded
// config uses it, so a reload (which provisions the new config before it
// cleans up the old) hands the same value over.
type pooled[T any] struct{ value T }

// Destruct closes the value if it is an io.Closer (a Redis client).
func (p pooled[T]) Destruct() error {
	if c, ok := any(p.value).(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// loadPooled returns the pool's value for key, creating it with create if no
// loaded config holds it. Every call must be paired with pool.Delete(key).
func loadPooled[T any](pool *caddy.UsagePool, key string, create func() T) (T, error) {
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return pooled[T]{create()}, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(pooled[T]).value, nil
}
