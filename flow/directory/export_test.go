package directory

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// What the index tests (package directory_test, which may import the Redis
// store) need to spoil an index on purpose.
var (
	ShardOf     = shardOf
	ShardKey    = shardKey
	IndexDir    = indexDir
	ManifestKey = manifestKey
)

const (
	RecordPrefix = prefix
	IndexPrefix  = indexPrefix
	IndexFormat  = indexFormat
	ShardCount   = shardCount
	WritersDir   = writersDir

	FlushEvery = flushEvery
)

// KV is the directory's storage.
func (d *Directory) KV() KV { return d.kv }

// FlushLate writes the queued last sign-ins now, as the next flush would.
func (d *Directory) FlushLate() { d.late.flush(context.Background()) }

// List loads every record of the tenant, sorted by address: what the tests
// compare pages with (the gateway lists through Find, never every record).
func (d *Directory) List(ctx context.Context, tenant string) ([]Guest, error) {
	keys, err := d.recordFiles(ctx, tenant)
	if err != nil {
		return nil, err
	}
	guests := []Guest{}
	for _, k := range keys {
		g, err := d.load(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		guests = append(guests, g)
	}
	slices.SortFunc(guests, func(a, b Guest) int { return strings.Compare(a.Email, b.Email) })
	return guests, nil
}
