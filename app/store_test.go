package app

import (
	"context"
	"testing"

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
