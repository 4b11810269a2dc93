package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// runErase checks EraseConversation: nothing of the conversation remains, its neighbours are
// untouched, and its legs are free again.
func runErase(t *testing.T, h *harness) {
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	fill := func(t *testing.T, s bridge.Store, id string) {
		t.Helper()
		create(t, s, conv(id))
		bot := "botframework/" + id + "-bot"
		_, _, err := s.Append(ctx, id, entry("hello", "k1", bot))
		require.NoError(t, err)
		appendN(t, s, id, 2, bot)
		require.NoError(t, s.Ack(ctx, id, bot, 0))
		require.NoError(t, s.SetTimer(ctx, id, "inactivity", now.Add(-time.Minute)))
		require.NoError(t, s.PutValue(ctx, id, "session", []byte("v-"+id)))
		require.NoError(t, s.PutBlob(ctx, id, "f1", bridge.Blob{ContentType: "text/plain", Data: []byte("file")}))
	}

	t.Run("nothing of it remains", func(t *testing.T) {
		s := h.newStore(t)
		fill(t, s, "e1")
		fill(t, s, "e2")
		woken := make(chan struct{})
		stop := s.Watch("e1", 10, func() { close(woken) })
		defer stop()

		require.NoError(t, s.EraseConversation(ctx, "e1"))
		select {
		case <-woken:
		case <-time.After(5 * time.Second):
			t.Fatal("a watcher of the erased conversation was not woken")
		}
		requireGone(t, s, "e1", now)
		requireKept(t, s, "e2", now)
		s = h.again(t, s)
		requireGone(t, s, "e1", now)
		requireKept(t, s, "e2", now)
		require.ErrorIs(t, s.EraseConversation(ctx, "e1"), bridge.ErrUnknownConversation, "erased twice")
	})

	t.Run("an unknown conversation", func(t *testing.T) {
		s := h.newStore(t)
		require.ErrorIs(t, s.EraseConversation(ctx, "ghost"), bridge.ErrUnknownConversation)
	})

	t.Run("a new conversation takes the legs and the id", func(t *testing.T) {
		s := h.newStore(t)
		fill(t, s, "e3")
		require.NoError(t, s.EraseConversation(ctx, "e3"))
		c := conv("e4")
		c.Customer.ConversationID, c.Bot.ConversationID = "e3", "e3-bot"
		create(t, s, c)
		got, err := s.ConversationByLeg(ctx, "directline", "e3")
		require.NoError(t, err)
		require.Equal(t, "e4", got.ID)
		reused := conv("e3")
		reused.Customer.ConversationID, reused.Bot.ConversationID = "e5", "e5-bot"
		again := create(t, s, reused)
		require.Equal(t, int64(1), again.Version)
		last, err := s.Last(ctx, "e3")
		require.NoError(t, err)
		require.Equal(t, int64(-1), last, "a new conversation under the erased id starts an empty log")
		seq, dup, err := s.Append(ctx, "e3", entry("again", "k1"))
		require.NoError(t, err)
		require.False(t, dup, "the idempotency keys went with it")
		require.Equal(t, int64(0), seq)
	})
}

// requireGone checks that nothing of the conversation id can be read.
func requireGone(t *testing.T, s bridge.Store, id string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	_, err := s.Conversation(ctx, id)
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	for _, leg := range [][2]string{{"directline", id}, {"botframework", id + "-bot"}} {
		_, err = s.ConversationByLeg(ctx, leg[0], leg[1])
		require.ErrorIs(t, err, bridge.ErrUnknownConversation, "leg %s", leg)
	}
	recs, err := s.Since(ctx, id, -1, 0)
	if err == nil {
		require.Empty(t, recs)
	} else {
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	}
	cur, err := s.Cursor(ctx, id, "botframework/"+id+"-bot")
	require.NoError(t, err)
	require.Equal(t, int64(-1), cur)
	for _, p := range pending(t, s) {
		require.NotEqual(t, id, p.ConversationID, "pending")
	}
	due, err := s.DueTimers(ctx, now, 0)
	require.NoError(t, err)
	for _, tm := range due {
		require.NotEqual(t, id, tm.ConversationID, "due timers")
	}
	_, err = s.Value(ctx, id, "session")
	require.ErrorIs(t, err, bridge.ErrNotFound)
	vals, err := s.Values(ctx, "session")
	require.NoError(t, err)
	require.NotContains(t, vals, id)
	_, err = s.Blob(ctx, id, "f1")
	require.ErrorIs(t, err, bridge.ErrNotFound)
	all, err := s.Conversations(ctx, "", 0)
	require.NoError(t, err)
	for _, c := range all {
		require.NotEqual(t, id, c.ID, "listed")
	}
}

// requireKept checks that the conversation id filled by runErase is whole.
func requireKept(t *testing.T, s bridge.Store, id string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	_, err := s.ConversationByLeg(ctx, "directline", id)
	require.NoError(t, err)
	recs, err := s.Since(ctx, id, -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Contains(t, pending(t, s), bridge.PendingLeg{ConversationID: id, Leg: "botframework/" + id + "-bot", Cursor: 0, Last: 2})
	due, err := s.DueTimers(ctx, now, 0)
	require.NoError(t, err)
	require.Contains(t, fmt.Sprint(due), id)
	v, err := s.Value(ctx, id, "session")
	require.NoError(t, err)
	require.Equal(t, "v-"+id, string(v))
	_, err = s.Blob(ctx, id, "f1")
	require.NoError(t, err)
}

// runList checks Conversations: id order, pages, and a limit of 0 for all.
func runList(t *testing.T, h *harness) {
	ctx := context.Background()
	s := h.newStore(t)
	got, err := s.Conversations(ctx, "", 0)
	require.NoError(t, err)
	require.Empty(t, got)
	for _, id := range []string{"l3", "l1", "l5", "l2", "l4"} {
		create(t, s, conv(id))
	}
	ids := func(cs []*bridge.Conversation) (out []string) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	all, err := s.Conversations(ctx, "", 0)
	require.NoError(t, err)
	require.Equal(t, []string{"l1", "l2", "l3", "l4", "l5"}, ids(all))
	require.Equal(t, int64(1), all[0].Version)
	page, err := s.Conversations(ctx, "", 2)
	require.NoError(t, err)
	require.Equal(t, []string{"l1", "l2"}, ids(page))
	page, err = s.Conversations(ctx, "l2", 2)
	require.NoError(t, err)
	require.Equal(t, []string{"l3", "l4"}, ids(page))
	page, err = s.Conversations(ctx, "l4", 2)
	require.NoError(t, err)
	require.Equal(t, []string{"l5"}, ids(page))
	page, err = s.Conversations(ctx, "l5", 2)
	require.NoError(t, err)
	require.Empty(t, page)
}
