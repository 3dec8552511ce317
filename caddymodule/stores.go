package caddymodule

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/memstore"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// Store is a module in the http.handlers.email_otp.stores namespace.
type Store interface {
	flow.Store
}

// memoryStores keeps the process's memory store across config reloads, so a
// reload neither forgets pending codes nor brings signed-out sessions back.
var memoryStores = caddy.NewUsagePool()

const memoryStoreKey = "memory"

// MemoryStore keeps pending codes and revocations in this process, in bounded
// LRU caches. Every email_otp handler of the process shares one; the limits of
// the first one loaded apply. It does not survive a restart and is not shared
// between nodes. It is the default store.
type MemoryStore struct {
	// Most pending codes kept; the least recently used go first. Default: 100000.
	MaxChallenges int `json:"max_challenges,omitempty"`
	// Most signed-out sessions remembered until their expiry. Default: 100000.
	MaxRevocations int `json:"max_revocations,omitempty"`

	*memstore.Store
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision implements caddy.Provisioner.
func (s *MemoryStore) Provision(caddy.Context) error {
	var err error
	s.Store, err = loadPooled(memoryStores, memoryStoreKey, func() *memstore.Store {
		return memstore.New(memstore.Limits{MaxChallenges: s.MaxChallenges, MaxRevocations: s.MaxRevocations})
	})
	return err
}

// Cleanup implements caddy.CleanerUpper.
func (s *MemoryStore) Cleanup() error {
	_, err := memoryStores.Delete(memoryStoreKey)
	return err
}

// UnmarshalCaddyfile sets up the memory store:
//
//	store memory [{
//		max_challenges  <n>
//		max_revocations <n>
//	}]
func (s *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalModuleBlock(d, "store memory", nil, func(opt, val string) error {
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return fmt.Errorf("%s %q is not a positive number", opt, val)
		}
		switch opt {
		case "max_challenges":
			s.MaxChallenges = n
		case "max_revocations":
			s.MaxRevocations = n
		default:
			return fmt.Errorf("unknown option %q (use max_challenges, max_revocations)", opt)
		}
		return nil
	})
}

// Interface guards
var (
	_ Store                 = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
)
