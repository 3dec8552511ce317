package emailotp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/capool"
	"github.com/otpgate/caddy-email-otp/internal/store/memstore"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
	caddy.RegisterModule(RedisStore{})
}

// Store is a module in the http.handlers.email_otp.stores namespace.
type Store interface {
	flow.Store
}

// memoryStores keeps the process's memory store across config reloads, so a
// reload neither forgets pending codes nor brings signed-out sessions back.
var memoryStores = caddy.NewUsagePool()

const memoryStoreKey = "memory"

// MemoryStore keeps pending codes and revocations in this process, in tables
// bounded in size: a full table refuses new entries (the guest is asked to
// try again shortly) rather than drop a live code, counter or lock. Every email_otp handler of the process shares one; the limits of
// the first one loaded apply. It does not survive a restart and is not shared
// between nodes. It is the default store.
type MemoryStore struct {
	// Most pending codes kept (send counters get twice as many entries,
	// cooldowns as many). Default: 100000.
	MaxChallenges int `json:"max_challenges,omitempty"`
	// Most signed-out sessions remembered until their expiry. Default: 100000.
	MaxRevocations int `json:"max_revocations,omitempty"`
	// Most entries of security state (wrong-try counts, locks, back-offs,
	// "this wasn't me"), kept apart from pending codes and send counters so
	// that a flood of sends can't fill their room. Default: 100000.
	MaxSecurity int `json:"max_security,omitempty"`

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
		return memstore.New(memstore.Limits{MaxChallenges: s.MaxChallenges, MaxRevocations: s.MaxRevocations, MaxSecurity: s.MaxSecurity})
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
//		max_security    <n>
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
		case "max_security":
			s.MaxSecurity = n
		default:
			return fmt.Errorf("unknown option %q (use max_challenges, max_revocations, max_security)", opt)
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

// redisClients keeps Redis connections across reloads of the same settings.
var redisClients = caddy.NewUsagePool()

// RedisStore keeps pending codes, wrong-try counts and sign-outs in Redis,
// Valkey, Redis Sentinel or Redis Cluster, so every node that shares it (and
// Caddy's storage, for the keys) acts as one. If Redis can't be reached,
// sign-in fails closed with a 503 page; so do signed-in requests, unless
// session_grace lets sessions this node checked recently pass.
type RedisStore struct {
	// A redis:// or rediss:// URL: user, password, host, port and database.
	// Default: none (then Addresses).
	URL string `json:"url,omitempty"`
	// host:port of the server, of Sentinels (with MasterName) or of Cluster
	// nodes. Default: localhost:6379.
	Addresses []string `json:"addresses,omitempty"`
	// ACL user name; accepts placeholders. Default: none.
	Username string `json:"username,omitempty"`
	// Password; accepts {env.*} and {file.*} placeholders. Default: none.
	Password string `json:"password,omitempty"`
	// Database number (not with Cluster). Default: 0.
	DB int `json:"db,omitempty"`
	// Connect with TLS. Default: false (true for rediss:// URLs).
	TLS bool `json:"tls,omitempty"`
	// PEM file of the CAs to trust for TLS. Default: the system's.
	CAFile string `json:"ca_file,omitempty"`
	// Treat Addresses as Redis Cluster nodes even if there is one. Default: false.
	Cluster bool `json:"cluster,omitempty"`
	// Sentinel master name. Default: none.
	MasterName string `json:"master_name,omitempty"`
	// Prefix of every key. Default: email_otp:.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Time to connect. Default: 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// How long a session this node found valid may pass while Redis can't be
	// asked about sign-outs. Default: 0 (fail closed).
	SessionGrace caddy.Duration `json:"session_grace,omitempty"`
	// The longest this node answers "not signed out" from memory. Every
	// node subscribes to a change feed on which sign-outs and changes to
	// guests are announced, and forgets a session the moment it hears of
	// it; this bound holds even for an announcement that is lost. While
	// the subscription is down the node asks Redis on every request.
	// Negative: always ask Redis. Default: 1s.
	SessionCache caddy.Duration `json:"session_cache,omitempty"`
	// Keep the guest directory (records, their index, passkey owners) in
	// this Redis instead of Caddy's storage, so nodes need no shared
	// storage for guests. Invitations then live only in Redis: use it with
	// a Redis that persists (AOF or RDB). Default: false.
	GuestDirectory bool `json:"guest_directory,omitempty"`

	*redisstore.Store
	poolKey string
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

func (s *RedisStore) options() (*redis.UniversalOptions, error) {
	repl := caddy.NewReplacer()
	o := &redis.UniversalOptions{
		Addrs:         s.Addresses,
		Username:      repl.ReplaceAll(s.Username, ""),
		Password:      repl.ReplaceAll(s.Password, ""),
		DB:            s.DB,
		MasterName:    s.MasterName,
		IsClusterMode: s.Cluster,
		DialTimeout:   time.Duration(s.DialTimeout),
	}
	if s.URL != "" {
		if len(s.Addresses) > 0 {
			return nil, errors.New("give a url or addresses, not both")
		}
		u, err := redis.ParseURL(repl.ReplaceAll(s.URL, ""))
		if err != nil {
			return nil, fmt.Errorf("url: %v (use redis://[user:password@]host:port/db)", err)
		}
		o.Addrs, o.DB, o.TLSConfig = []string{u.Addr}, u.DB, u.TLSConfig
		if u.Username != "" {
			o.Username = u.Username
		}
		if u.Password != "" {
			o.Password = u.Password
		}
	}
	if len(o.Addrs) == 0 {
		o.Addrs = []string{"localhost:6379"}
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if s.TLS || s.CAFile != "" {
		if o.TLSConfig == nil {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if s.CAFile != "" {
			var err error
			if o.TLSConfig.RootCAs, err = capool.Load(s.CAFile); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// Provision implements caddy.Provisioner. Unlike the mailers it does ask the
// server (one PING, bounded by dial_timeout): a store that can't be reached
// or refuses the credentials is a config error an operator wants at load.
func (s *RedisStore) Provision(ctx caddy.Context) error {
	o, err := s.options()
	if err != nil {
		return fmt.Errorf("store redis: %w", err)
	}
	cfg, _ := json.Marshal(s)
	s.poolKey = string(cfg)
	rdb, err := loadPooled(redisClients, s.poolKey, func() redis.UniversalClient { return redis.NewUniversalClient(o) })
	if err != nil {
		return err
	}
	cache := time.Duration(s.SessionCache)
	if cache == 0 {
		cache = defaultSessionCache
	}
	s.Store = redisstore.New(rdb, redisstore.Options{Prefix: s.KeyPrefix, SessionGrace: time.Duration(s.SessionGrace), SessionCache: cache})
	pingCtx, cancel := context.WithTimeout(ctx, o.DialTimeout+time.Second)
	defer cancel()
	if err := s.Ping(pingCtx); err != nil {
		_, _ = redisClients.Delete(s.poolKey)
		return fmt.Errorf("store redis: cannot use Redis at %s: %v (check the address, password and TLS settings)", strings.Join(o.Addrs, ", "), err)
	}
	s.Watch()
	return nil
}

// GuestStorage is where the guest directory lives when guest_directory
// is on; nil keeps it in Caddy's storage.
func (s *RedisStore) GuestStorage() *redisstore.GuestStorage {
	if !s.GuestDirectory {
		return nil
	}
	return s.Store.GuestStorage()
}

// defaultSessionCache is session_cache's default: sign-out is seen by every
// node at once, and within a second even if the announcement is lost.
const defaultSessionCache = time.Second

// Cleanup implements caddy.CleanerUpper.
func (s *RedisStore) Cleanup() error {
	if s.Store != nil {
		s.Close()
	}
	_, err := redisClients.Delete(s.poolKey)
	return err
}

// UnmarshalCaddyfile sets up the Redis store:
//
//	store redis [<url>] [{
//		address      <host:port>         # repeatable: Sentinels or Cluster nodes
//		username     <user>
//		password     <password>          # e.g. {env.REDIS_PASSWORD}
//		db           <n>
//		tls
//		ca_file      <pem file>
//		cluster
//		master_name  <name>
//		key_prefix   <prefix>
//		dial_timeout <duration>
//		session_grace <duration>
//		session_cache <duration>|off
//		guest_directory                  # keep the guests in this Redis (it must persist)
//	}]
func (s *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		s.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	flags := map[string]*bool{"tls": &s.TLS, "cluster": &s.Cluster, "guest_directory": &s.GuestDirectory}
	return unmarshalBlock(d, "store redis", flags, func(opt, val string) error {
		var err error
		switch opt {
		case "address":
			s.Addresses = append(s.Addresses, val)
		case "username":
			s.Username = val
		case "password":
			s.Password = val
		case "db":
			if s.DB, err = strconv.Atoi(val); err != nil || s.DB < 0 {
				return fmt.Errorf("db %q is not a database number", val)
			}
		case "ca_file":
			s.CAFile = val
		case "master_name":
			s.MasterName = val
		case "key_prefix":
			s.KeyPrefix = val
		case "dial_timeout":
			s.DialTimeout, err = parsePositiveDuration(opt, val)
		case "session_grace":
			s.SessionGrace, err = parsePositiveDuration(opt, val)
		case "session_cache":
			if val == "off" {
				s.SessionCache = -1
			} else {
				s.SessionCache, err = parsePositiveDuration(opt, val)
			}
		default:
			return fmt.Errorf("unknown option %q (use address, username, password, db, tls, ca_file, cluster, master_name, key_prefix, dial_timeout, session_grace, session_cache, guest_directory)", opt)
		}
		return err
	})
}

// Interface guards
var (
	_ Store                 = (*RedisStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
)
