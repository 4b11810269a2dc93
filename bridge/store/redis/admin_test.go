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

// Conversations created before the index existed (by an older bridge) are listed: the first
// listing of a Store scans for them.
func TestConversationsBackfill(t *testing.T) {
	ctx := context.Background()
	rdb := server(t)
	s := open(t, rdb, "backfill:")
	for _, id := range []string{"old1", "~tilde", "new1"} {
		_, _, err := s.CreateConversation(ctx, &bridge.Conversation{ID: id, State: bridge.StateBot,
			Customer: bridge.Leg{Channel: "directline", ConversationID: "dl-" + id}})
		require.NoError(t, err)
	}
	require.NoError(t, rdb.ZRem(ctx, "backfill:convs", "old1", "~tilde").Err()) // as an older bridge left them
	list := func(s *Store) (ids []string) {
		cs, err := s.Conversations(ctx, "", 0)
		require.NoError(t, err)
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	require.Equal(t, []string{"new1", "old1", "~tilde"}, list(s))
	require.NoError(t, rdb.ZRem(ctx, "backfill:convs", "old1").Err())
	require.Equal(t, []string{"new1", "~tilde"}, list(s), "once per Store")
	require.Equal(t, []string{"new1", "old1", "~tilde"}, list(open(t, rdb, "backfill:")))
	require.Empty(t, list(open(t, rdb, "other:")), "another prefix's")
}
