package app

import (
	"context"
	"errors"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	redisstore "github.com/bfbridge/bfbridge/bridge/store/redis"
	"github.com/bfbridge/bfbridge/bridge/store/sqlite"
)

// storeKind is a store the configuration can name.
type storeKind struct {
	// durable stores keep conversations across restarts: sqlite in data_dir, redis on its
	// server (data_dir then still keeps the generated secret and signing key, which must
	// outlive a restart as the conversations do).
	durable bool
	open    func(ctx context.Context, c *Config, log zerolog.Logger) (bridge.Store, error)
}

// stores are the stores by the name the store: setting gives them: the one place a store
// name is resolved. A new store is a line here.
var stores = map[string]storeKind{
	"memory": {open: func(context.Context, *Config, zerolog.Logger) (bridge.Store, error) { return memory.New(), nil }},
	"sqlite": {durable: true, open: func(ctx context.Context, c *Config, log zerolog.Logger) (bridge.Store, error) {
		return sqlite.Open(ctx, sqlite.Options{Dir: c.DataDir, TTL: c.Retention, Log: log})
	}},
	"redis": {durable: true, open: openRedis},
}

// openRedis opens the redis store on a client of its own, which the store's Close closes.
func openRedis(ctx context.Context, c *Config, log zerolog.Logger) (bridge.Store, error) {
	rdb, err := c.Redis.client()
	if err != nil {
		return nil, err
	}
	s, err := redisstore.Open(ctx, redisstore.Options{Client: rdb, TTL: c.Retention, Log: log})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return ownedRedis{s, rdb}, nil
}

// ownedRedis is a redis store that closes its client with it.
type ownedRedis struct {
	*redisstore.Store
	rdb goredis.UniversalClient
}

func (s ownedRedis) Close() error { return errors.Join(s.Store.Close(), s.rdb.Close()) }

// StoreNames returns the names store: accepts, sorted.
func StoreNames() []string {
	names := make([]string, 0, len(stores))
	for n := range stores {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// storeList is StoreNames for error messages: "memory or sqlite".
func storeList() string {
	n := StoreNames()
	if len(n) < 2 {
		return strings.Join(n, "")
	}
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}

// Durable reports whether the configured store keeps conversations across restarts (in DataDir).
func (c *Config) Durable() bool { return stores[c.Store].durable }

// openStore opens the configured store.
func (c *Config) openStore(ctx context.Context, log zerolog.Logger) (bridge.Store, error) {
	return stores[c.Store].open(ctx, c, log)
}
