package app

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestRedisStore opens the redis store as the configuration names it, on a redis-server of
// the test's own, and checks that a second store on the same URL sees what the first stored.
func TestRedisStore(t *testing.T) {
	ctx := context.Background()
	cfg := Defaults()
	cfg.Store = "redis"
	require.True(t, cfg.Durable())
	require.NoError(t, cfg.Set("BRIDGE_REDIS_URL", "redis://"+testutil.RedisServer(t)+"/3"))
	a, err := cfg.openStore(ctx, zerolog.Nop())
	require.NoError(t, err)
	_, created, err := a.CreateConversation(ctx, &bridge.Conversation{ID: "c", Customer: bridge.Leg{Channel: "directline", ConversationID: "c"}})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, a.Close())
	b, err := cfg.openStore(ctx, zerolog.Nop())
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	got, err := b.ConversationByLeg(ctx, "directline", "c")
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version)

	cfg.Redis.URL = "redis://127.0.0.1:1"
	_, err = cfg.openStore(ctx, zerolog.Nop())
	require.ErrorContains(t, err, "ping")
}

// The redis store through Redis Sentinel (redis.sentinel) and on a Redis Cluster (redis.cluster):
// the client the section describes reaches the same data as a direct one.
func TestRedisTopologies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis Sentinel and a Redis Cluster")
	}
	ctx := context.Background()
	check := func(t *testing.T, cfg Config) {
		require.NoError(t, cfg.Redis.validate())
		s, err := cfg.openStore(ctx, zerolog.Nop())
		require.NoError(t, err)
		defer func() { require.NoError(t, s.Close()) }()
		_, created, err := s.CreateConversation(ctx, &bridge.Conversation{ID: "c", Customer: bridge.Leg{Channel: "directline", ConversationID: "c"}})
		require.NoError(t, err)
		require.True(t, created)
		got, err := s.ConversationByLeg(ctx, "directline", "c")
		require.NoError(t, err)
		require.Equal(t, "c", got.ID)
	}
	t.Run("sentinel", func(t *testing.T) {
		primary := testutil.RedisServer(t)
		cfg := Defaults()
		cfg.Store, cfg.DataDir = "redis", t.TempDir()
		require.NoError(t, cfg.Set("BRIDGE_REDIS_URL", "redis://ignored:1/2"))
		require.NoError(t, cfg.Set("BRIDGE_REDIS_SENTINEL_MASTER", "bridge"))
		require.NoError(t, cfg.Set("BRIDGE_REDIS_SENTINEL_ADDRS", testutil.RedisSentinel(t, "bridge", primary)))
		check(t, cfg)
		direct := goredis.NewClient(&goredis.Options{Addr: primary, DB: 2})
		defer direct.Close()
		keys, err := direct.Keys(ctx, "bfbridge:*").Result()
		require.NoError(t, err)
		require.NotEmpty(t, keys, "written to the primary, in the URL's database")
	})
	t.Run("cluster", func(t *testing.T) {
		cfg := Defaults()
		cfg.Store, cfg.DataDir = "redis", t.TempDir()
		cfg.Redis.URL = "redis://127.0.0.1:1"
		cfg.Redis.Cluster = testutil.RedisCluster(t)
		check(t, cfg)
	})
	t.Run("refusals", func(t *testing.T) {
		cfg := Defaults()
		cfg.Store = "redis"
		cfg.Redis = Redis{URL: "redis://h:1", Cluster: []string{"a:1"}, Sentinel: RedisSentinel{MasterName: "m", Addrs: []string{"s:1"}}}
		require.ErrorContains(t, cfg.Redis.validate(), "redis: cluster and sentinel exclude each other")
		cfg.Redis = Redis{URL: "redis://h:1", Sentinel: RedisSentinel{MasterName: "m"}}
		require.ErrorContains(t, cfg.Redis.validate(), "redis.sentinel needs both master_name and addrs")
	})
}
