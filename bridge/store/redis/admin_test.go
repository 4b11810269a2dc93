package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// TestEraseLeavesNoKey erases a conversation with a log, a cursor, a timer, a value, a file and
// a lease, and finds no key of it in Redis, and no mention of it in the global keys.
func TestEraseLeavesNoKey(t *testing.T) {
	ctx := context.Background()
	rdb := server(t)
	s := open(t, rdb, "erase:")
	c := &bridge.Conversation{ID: "gone", State: bridge.StateBot,
		Customer: bridge.Leg{Channel: "directline", ConversationID: "gone"},
		Bot:      bridge.Leg{Channel: "botframework", ConversationID: "gone-bot"}}
	_, _, err := s.CreateConversation(ctx, c)
	require.NoError(t, err)
	_, _, err = s.Append(ctx, "gone", bridge.Entry{From: bridge.RoleCustomer, Activity: &activity.Activity{Type: "message", Text: "secret"},
		Key: "k", To: []string{"botframework/gone-bot"}})
	require.NoError(t, err)
	require.NoError(t, s.SetTimer(ctx, "gone", "inactivity", time.Now()))
	require.NoError(t, s.PutValue(ctx, "gone", "session", []byte("x")))
	require.NoError(t, s.PutBlob(ctx, "gone", "f", bridge.Blob{Data: []byte("file")}))
	_, _, err = s.Acquire(ctx, "gone", bridge.OutboxLease("botframework/gone-bot"), time.Minute)
	require.NoError(t, err)

	require.NoError(t, s.EraseConversation(ctx, "gone"))
	keys, err := rdb.Keys(ctx, "erase:*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		require.NotContains(t, k, "gone", "key %s", k)
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "set":
			require.NotContains(t, rdb.SMembers(ctx, k).Val(), "gone", k)
		case "zset":
			for _, m := range rdb.ZRange(ctx, k, 0, -1).Val() {
				require.False(t, strings.HasPrefix(m, "gone"), "%s holds %q", k, m)
			}
		}
	}
}
