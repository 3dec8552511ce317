package emailotp

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/funnel"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// guestCacheTTL bounds how stale another node's view of a guest may be: a
// revocation made on one node ends sessions on the others within it even
// if they never hear of it (nodes that share only Caddy's storage, or an
// announcement lost on the Redis change feed). Re-reading an active guest's
// record once a second costs one storage read per guest per second.
const guestCacheTTL = time.Second

// directories holds one directory (and so one cache) per storage, shared by
// the gateways and the admin API of the process: a change made through the
// admin API applies here at the next request.
var directories = caddy.NewUsagePool()

// funnels holds one sign-in funnel per storage, beside its directory: the
// steps' counts by the hour, which the console's overview sums.
var funnels = caddy.NewUsagePool()

// guestBook is a gateway's hold on the process's guest directory for its
// storage, with the store's change feed (where it has one) keeping the
// directory's cache current with the other nodes' changes.
type guestBook struct {
	*directory.Directory
	funnel  *funnel.Funnel
	poolKey string    // in directories and funnels
	feed    guestFeed // nil unless the store tells nodes of changes
	stop    func()    // stops following the feed
}

// openGuestBook returns the pooled directory of the store's guest storage
// (store redis with guest_directory) or else of Caddy's storage, following the store's change
// feed if it has one. Every call must be paired with close.
func openGuestBook(ctx caddy.Context, storeModule any) (*guestBook, error) {
	var st directory.KV = ctx.Storage()
	if own, ok := storeModule.(guestStorer); ok {
		if gs := own.GuestStorage(); gs != nil {
			st = gs
		}
	}
	key := fmt.Sprintf("%T %+v", st, st)
	dir, err := loadPooled(directories, key, func() *directory.Directory {
		return directory.New(st, 100_000, guestCacheTTL)
	})
	if err != nil {
		return nil, err
	}
	counts, err := loadPooled(funnels, key, func() *funnel.Funnel {
		f := funnel.New(st, nil)
		f.Start()
		return f
	})
	if err != nil {
		_, _ = directories.Delete(key)
		return nil, err
	}
	book := &guestBook{Directory: dir, funnel: counts, poolKey: key, stop: func() {}}
	if feed, ok := storeModule.(guestFeed); ok {
		book.feed = feed
		book.stop = feed.OnGuestChange(func(tenant, email string) {
			if tenant == "" {
				dir.ForgetAll()
			} else {
				dir.Forget(tenant, email)
			}
		})
	}
	return book, nil
}

func (b *guestBook) close() {
	b.stop()
	_, _ = directories.Delete(b.poolKey)
	_, _ = funnels.Delete(b.poolKey)
}

// guestStorer is a store that may keep the guest directory itself (store
// redis with guest_directory): nodes that share it share their guests.
type guestStorer interface {
	GuestStorage() *redisstore.GuestStorage
}

// guestFeed is a store that tells every node when a guest's record changes
// (store redis): nodes then drop their cached copy at once instead of
// waiting out guestCacheTTL.
type guestFeed interface {
	OnGuestChange(fn func(tenant, email string)) (stop func())
	AnnounceGuestChange(ctx context.Context, tenant, email string) error
}

// announceGuestChange tells every node sharing a loaded gateway's store
// that a guest's record changed (this node's directory already knows).
func announceGuestChange(ctx context.Context, logger *zap.Logger, tenant, email string) {
	told := map[guestFeed]bool{}
	for _, g := range gateways.loaded() {
		feed := g.guests.feed
		if feed == nil || told[feed] {
			continue
		}
		told[feed] = true
		if err := feed.AnnounceGuestChange(ctx, tenant, email); err != nil {
			logger.Warn("could not announce a guest's change to the other nodes: they see it within "+guestCacheTTL.String(),
				zap.String("tenant", tenant), zap.Error(err))
		}
	}
}
