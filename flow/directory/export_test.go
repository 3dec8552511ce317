package directory

import "context"

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
