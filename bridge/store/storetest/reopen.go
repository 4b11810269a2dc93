package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// runReopen checks that conversations and logs survive a restart of a durable store, and that
// numbering, idempotency keys and versions carry on. (The other groups reopen their stores too.)
func runReopen(t *testing.T, h *harness) {
	ctx := context.Background()
	s := h.newStore(t)
	create(t, s, conv("r1"))
	_, err := bridge.UpdateConversation(ctx, s, "r1", func(c *bridge.Conversation) error {
		c.Agent = &bridge.Leg{Channel: "desk", ConversationID: "agent-7"}
		c.State = bridge.StateAgent
		return nil
	})
	require.NoError(t, err)
	const agent = "desk/agent-7"
	for i := range 5 {
		_, _, err := s.Append(ctx, "r1", entry(fmt.Sprint("m", i), fmt.Sprint("k", i), agent))
		require.NoError(t, err)
	}
	require.NoError(t, s.Ack(ctx, "r1", agent, 3))

	s = h.again(t, s)
	got, err := s.ConversationByLeg(ctx, "desk", "agent-7")
	require.NoError(t, err)
	require.Equal(t, bridge.StateAgent, got.State)
	require.Equal(t, int64(2), got.Version)
	last, err := s.Last(ctx, "r1")
	require.NoError(t, err)
	require.Equal(t, int64(4), last)
	recs, err := s.Since(ctx, "r1", -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 5)
	for i, r := range recs {
		require.Equal(t, int64(i), r.Seq)
		require.Equal(t, fmt.Sprint("m", i), r.Activity.Text)
		require.Equal(t, bridge.FormatActivityID("r1", int64(i)), r.Activity.ID)
		require.Equal(t, []string{agent}, r.To)
	}
	require.Equal(t, []bridge.PendingLeg{{ConversationID: "r1", Leg: agent, Cursor: 3, Last: 4}}, pending(t, s))

	// versions, idempotency keys and numbering carry on
	got.State = bridge.StateEnded
	require.NoError(t, s.PutConversation(ctx, got))
	require.Equal(t, int64(3), got.Version)
	stale := *got
	stale.Version = 2
	require.ErrorIs(t, s.PutConversation(ctx, &stale), bridge.ErrVersionConflict)
	seq, dup, err := s.Append(ctx, "r1", entry("again", "k2"))
	require.NoError(t, err)
	require.True(t, dup)
	require.Equal(t, int64(2), seq)
	seq, dup, err = s.Append(ctx, "r1", entry("next", ""))
	require.NoError(t, err)
	require.False(t, dup)
	require.Equal(t, int64(5), seq)
	_, created, err := s.CreateConversation(ctx, conv("r1"))
	require.NoError(t, err)
	require.False(t, created)
}
