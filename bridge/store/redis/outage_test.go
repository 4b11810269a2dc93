package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// A Redis that is gone makes the store's errors ErrStoreUnavailable (so channels answer 503 with
// Retry-After); once it is back the store works again by itself, and what it acknowledged before
// the crash is still there (Redis with appendfsync always).
func TestOutageAndRecovery(t *testing.T) {
	ctx := context.Background()
	rp := testutil.StartRedis(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: rp.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	s := open(t, rdb, "outage:")
	_, _, err := s.CreateConversation(ctx, legConv("c"))
	require.NoError(t, err)
	seq, _, err := s.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("before"), Key: "k1"})
	require.NoError(t, err)

	rp.Kill()
	_, _, err = s.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("during"), Key: "k2"})
	require.ErrorIs(t, err, bridge.ErrStoreUnavailable)
	_, err = s.Conversation(ctx, "c")
	require.ErrorIs(t, err, bridge.ErrStoreUnavailable)
	require.ErrorIs(t, s.Ping(ctx), bridge.ErrStoreUnavailable)

	rp.Start(t)
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 50*time.Millisecond)
	recs, err := s.Since(ctx, "c", -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1, "the append acknowledged before the crash")
	require.Equal(t, seq, recs[0].Seq)
	require.Equal(t, "before", recs[0].Activity.Text)
	// the client's retry of the failed append goes through once
	again, dup, err := s.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("during"), Key: "k2"})
	require.NoError(t, err)
	require.False(t, dup)
	require.Equal(t, seq+1, again)
}

// A Redis that stops answering for longer than the client's read timeout (DEBUG SLEEP) gives
// ErrStoreUnavailable, not a wrong answer; answers that are answers stay what they are.
func TestStalledRedis(t *testing.T) {
	ctx := context.Background()
	addr := testutil.RedisServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	s := open(t, rdb, "stall:")
	_, _, err := s.CreateConversation(ctx, legConv("c"))
	require.NoError(t, err)

	admin := goredis.NewClient(&goredis.Options{Addr: addr, ReadTimeout: -1})
	t.Cleanup(func() { _ = admin.Close() })
	slept := make(chan error, 1)
	go func() { slept <- admin.Do(ctx, "DEBUG", "SLEEP", "1.5").Err() }()
	time.Sleep(100 * time.Millisecond) // the sleep has begun
	_, err = s.Conversation(ctx, "c")
	require.ErrorIs(t, err, bridge.ErrStoreUnavailable)
	require.NoError(t, <-slept)

	_, err = s.Conversation(ctx, "c")
	require.NoError(t, err)
	_, err = s.Conversation(ctx, "nobody")
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	require.False(t, errors.Is(err, bridge.ErrStoreUnavailable))
}
