package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/storetest"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// server starts a redis-server of the test's own and returns a client of it, closed when the
// test ends.
func server(t *testing.T) goredis.UniversalClient {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: testutil.RedisServer(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Ping(context.Background()).Err())
	return rdb
}

// open opens a store on rdb under prefix and closes it when the test ends.
func open(t *testing.T, rdb goredis.UniversalClient, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Client: rdb, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestContract(t *testing.T) {
	rdb := server(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) bridge.Store {
		return open(t, rdb, "test"+strconv.FormatInt(n.Add(1), 10)+":")
	}, storetest.WithReopen(func(t *testing.T, s bridge.Store) bridge.Store {
		prefix := s.(*Store).prefix
		require.NoError(t, s.Close())
		return open(t, rdb, prefix)
	}))
}

// TestKeys checks that a conversation's keys share one hash tag whatever its id, and that they expire.
func TestKeys(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{Client: rdb, Prefix: "k:", TTL: time.Hour})
	require.NoError(t, err)
	for _, id := range []string{"plain", "a}b", "{x}", "~y", ""} {
		for _, k := range s.convKeys(id) {
			require.Equal(t, slot(s.convKeys(id)[0]), slot(k), "%q: %s", id, k)
		}
	}
	require.NotEqual(t, s.convKeys("a}b")[0], s.convKeys("a")[0])
	c := &bridge.Conversation{ID: "ttl", Customer: bridge.Leg{Channel: "directline", ConversationID: "ttl"}}
	_, created, err := s.CreateConversation(ctx, c)
	require.NoError(t, err)
	require.True(t, created)
	_, _, err = s.Append(ctx, "ttl", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("x"), To: []string{"l"}})
	require.NoError(t, err)
	for _, k := range []int{kConv, kLog, kAddr} {
		d, err := rdb.PTTL(ctx, s.key(k, "ttl")).Result()
		require.NoError(t, err)
		require.Greater(t, d, 59*time.Minute, keyNames[k])
	}
	d, err := rdb.PTTL(ctx, s.legKey("directline/ttl")).Result()
	require.NoError(t, err)
	require.Greater(t, d, 59*time.Minute, "leg")

	_, err = Open(ctx, Options{Client: rdb, Prefix: "{x}"})
	require.Error(t, err)
}

// slot is the part of a key Redis Cluster hashes.
func slot(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}

// TestTwoInstances checks that one store reads what another appended to the same Redis.
func TestTwoInstances(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	a, b := open(t, rdb, "two:"), open(t, rdb, "two:")
	_, created, err := a.CreateConversation(ctx, &bridge.Conversation{ID: "c", Customer: bridge.Leg{Channel: "directline", ConversationID: "c"}})
	require.NoError(t, err)
	require.True(t, created)
	for i := range 3 {
		_, _, err := a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	last, err := b.Last(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(2), last)
	recs, err := b.Since(ctx, "c", 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	got, err := b.ConversationByLeg(ctx, "directline", "c")
	require.NoError(t, err)
	require.Equal(t, "c", got.ID)
	fired := make(chan struct{})
	b.Watch("c", 1, func() { close(fired) }) // already past: called at once
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("watch of a log another instance appended to")
	}
}

func msg(text string) *activity.Activity { return &activity.Activity{Type: "message", Text: text} }
