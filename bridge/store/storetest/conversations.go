package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// runConversations checks creation, compare-and-swap puts and lookups by id and by leg.
func runConversations(t *testing.T, h *harness) {
	ctx := context.Background()

	t.Run("by id and by every leg", func(t *testing.T) {
		s := h.newStore(t)
		c := conv("c1")
		c.Context = handoff.Variables{"Topic": handoff.String("Nurse"), "Tries": handoff.Integer(2)}
		create(t, s, c)
		got, err := s.Conversation(ctx, "c1")
		require.NoError(t, err)
		require.Equal(t, bridge.StateBot, got.State)
		require.True(t, handoff.String("Nurse").Equal(got.Context["Topic"]))
		require.True(t, handoff.Integer(2).Equal(got.Context["Tries"]), "context values keep their type")
		got.State = bridge.StateEnded // a copy: the store is not changed
		again, err := s.ConversationByLeg(ctx, "botframework", "c1-bot")
		require.NoError(t, err)
		require.Equal(t, bridge.StateBot, again.State)
		_, err = s.Conversation(ctx, "nope")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		_, err = s.ConversationByLeg(ctx, "directline", "nope")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		// a leg added later is indexed too
		c.Agent = &bridge.Leg{Channel: "desk", ConversationID: "a1"}
		c.State = bridge.StateAgent
		require.NoError(t, s.PutConversation(ctx, c))
		byAgent, err := s.ConversationByLeg(ctx, "desk", "a1")
		require.NoError(t, err)
		require.Equal(t, bridge.StateAgent, byAgent.State)
		require.Equal(t, int64(2), byAgent.Version)
	})

	t.Run("the store keeps its own copy", func(t *testing.T) {
		s := h.newStore(t)
		c := conv("c13")
		stored := create(t, s, c)
		c.State, c.Customer.User.ID = bridge.StateEnded, "changed"
		stored.State = bridge.StateQueued
		got, err := s.Conversation(ctx, "c13")
		require.NoError(t, err)
		require.Equal(t, bridge.StateBot, got.State)
		require.Equal(t, "u1", got.Customer.User.ID)
	})

	t.Run("create stores version 1 once", func(t *testing.T) {
		s := h.newStore(t)
		c := conv("v1")
		stored, created, err := s.CreateConversation(ctx, c)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, int64(1), c.Version, "the caller's copy gets the version")
		require.Equal(t, int64(1), stored.Version)
		other := conv("v1")
		other.State = bridge.StateAgent
		found, created, err := s.CreateConversation(ctx, other)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, bridge.StateBot, found.State, "the stored one is returned, unchanged")
		require.Equal(t, int64(1), found.Version)
		got, err := s.Conversation(ctx, "v1")
		require.NoError(t, err)
		require.Equal(t, bridge.StateBot, got.State)
		require.Equal(t, int64(1), got.Version)
		_, _, err = s.CreateConversation(ctx, &bridge.Conversation{})
		require.Error(t, err, "no id")
	})

	t.Run("concurrent creates of one id create it once", func(t *testing.T) {
		s := h.newStore(t)
		const n = 16
		type result struct {
			c       *bridge.Conversation
			created bool
			err     error
		}
		results := make([]result, n)
		concurrently(n, func(i int) {
			c := conv("race")
			c.Context = handoff.Variables{"who": handoff.Integer(int64(i))}
			stored, created, err := s.CreateConversation(ctx, c)
			results[i] = result{stored, created, err}
		})
		winners := 0
		for _, r := range results {
			require.NoError(t, r.err)
			if r.created {
				winners++
			}
			require.Equal(t, int64(1), r.c.Version)
			require.True(t, results[0].c.Context["who"].Equal(r.c.Context["who"]), "every caller gets the one stored")
		}
		require.Equal(t, 1, winners)
	})

	t.Run("a leg belongs to one conversation", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("first"))
		second := conv("second")
		second.Bot = bridge.Leg{Channel: "botframework", ConversationID: "first-bot"}
		_, created, err := s.CreateConversation(ctx, second)
		require.ErrorIs(t, err, bridge.ErrLegTaken)
		require.False(t, created)
		_, err = s.Conversation(ctx, "second")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation, "nothing stored")
		_, err = s.ConversationByLeg(ctx, "directline", "second")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation, "no leg indexed")
		byLeg, err := s.ConversationByLeg(ctx, "botframework", "first-bot")
		require.NoError(t, err)
		require.Equal(t, "first", byLeg.ID)
		create(t, s, conv("second")) // with legs of its own
	})

	t.Run("a put indexes new legs and keeps the index of old ones", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("holder"))
		c := create(t, s, conv("mover"))
		c.Agent = &bridge.Leg{Channel: "desk", ConversationID: "a1"}
		require.NoError(t, s.PutConversation(ctx, c))
		c.Agent = &bridge.Leg{Channel: "desk", ConversationID: "a2"}              // a1 dropped
		c.Bot = bridge.Leg{Channel: "botframework", ConversationID: "holder-bot"} // another's
		require.NoError(t, s.PutConversation(ctx, c))
		for _, tc := range []struct{ channel, id, want string }{
			{"desk", "a1", "mover"}, // kept
			{"desk", "a2", "mover"}, // new
			{"botframework", "holder-bot", "holder"},
			{"botframework", "mover-bot", "mover"},
		} {
			got, err := s.ConversationByLeg(ctx, tc.channel, tc.id)
			require.NoError(t, err)
			require.Equal(t, tc.want, got.ID, "%s/%s", tc.channel, tc.id)
		}
	})

	t.Run("put is compare-and-swap on the version", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("cas"))
		read := func() *bridge.Conversation {
			c, err := s.Conversation(ctx, "cas")
			require.NoError(t, err)
			return c
		}
		a, b := read(), read()
		a.State = bridge.StateEscalating
		require.NoError(t, s.PutConversation(ctx, a))
		require.Equal(t, int64(2), a.Version, "the caller's copy gets the new version")
		b.State = bridge.StateEnded
		require.ErrorIs(t, s.PutConversation(ctx, b), bridge.ErrVersionConflict, "b was read before a's put")
		require.Equal(t, int64(1), b.Version, "a failed put leaves the version alone")
		require.NoError(t, s.PutConversation(ctx, a), "a has the stored version")
		got := read()
		require.Equal(t, int64(3), got.Version)
		require.Equal(t, bridge.StateEscalating, got.State)
		for _, v := range []int64{0, 2, 4} {
			stale := read()
			stale.Version = v
			require.ErrorIs(t, s.PutConversation(ctx, stale), bridge.ErrVersionConflict, "version %d", v)
		}
		require.ErrorIs(t, s.PutConversation(ctx, conv("ghost")), bridge.ErrUnknownConversation)
		updated, err := bridge.UpdateConversation(ctx, s, "cas", func(c *bridge.Conversation) error {
			c.State = bridge.StateAgent
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, int64(4), updated.Version)
		require.Equal(t, bridge.StateAgent, read().State)
	})

	t.Run("concurrent updates all land", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("counter"))
		const writers, each = 8, 6 // few enough that no update runs out of retries
		errs := make([]error, writers)
		concurrently(writers, func(w int) {
			for i := range each {
				_, err := bridge.UpdateConversation(ctx, s, "counter", func(c *bridge.Conversation) error {
					if c.Context == nil {
						c.Context = handoff.Variables{}
					}
					c.Context[fmt.Sprintf("w%d-%d", w, i)] = handoff.Integer(1)
					return nil
				})
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		got, err := s.Conversation(ctx, "counter")
		require.NoError(t, err)
		require.Len(t, got.Context, writers*each, "no update was lost")
		require.Equal(t, int64(1+writers*each), got.Version)
	})
}
