package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// runDelivery checks the outbox's state: cursors and pending legs.
func runDelivery(t *testing.T, h *harness) {
	ctx := context.Background()

	t.Run("cursors never move back", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c6"))
		for _, step := range []struct {
			leg       string
			ack, want int64
		}{
			{"bot", -2, -1}, // -2: no ack, read only
			{"bot", 4, 4},
			{"bot", 2, 4},
			{"agent", -2, -1}, // legs are independent
			{"agent", 0, 0},
			{"bot", 4, 4},
			{"bot", 9, 9},
		} {
			if step.ack > -2 {
				require.NoError(t, s.Ack(ctx, "c6", step.leg, step.ack))
			}
			cur, err := s.Cursor(ctx, "c6", step.leg)
			require.NoError(t, err)
			require.Equal(t, step.want, cur, "%s after ack %d", step.leg, step.ack)
		}
		s = h.again(t, s)
		for leg, want := range map[string]int64{"bot": 9, "agent": 0, "never": -1} {
			cur, err := s.Cursor(ctx, "c6", leg)
			require.NoError(t, err)
			require.Equal(t, want, cur, "%s, reopened", leg)
		}
	})

	t.Run("ack of an unknown conversation", func(t *testing.T) {
		s := h.newStore(t)
		require.ErrorIs(t, s.Ack(ctx, "ghost", "bot", 1), bridge.ErrUnknownConversation)
		create(t, s, conv("ghost"))
		cur, err := s.Cursor(ctx, "ghost", "bot")
		require.NoError(t, err)
		require.Equal(t, int64(-1), cur, "no cursor outlives or predates its conversation")
	})

	t.Run("pending legs are those addressed past their cursor", func(t *testing.T) {
		s := h.newStore(t)
		require.Empty(t, pending(t, s))
		create(t, s, conv("p1"))
		create(t, s, conv("p2"))
		const bot, agent, other = "botframework/p1-bot", "desk/a1", "botframework/p2-bot"
		require.Empty(t, pending(t, s), "nothing appended")
		appendN(t, s, "p1", 1, bot)        // 0
		appendN(t, s, "p1", 1, bot, agent) // 1
		appendN(t, s, "p1", 1)             // 2: to nobody (read by Direct Line itself)
		appendN(t, s, "p2", 1, other)      // 0
		p := func(conv, leg string, cursor, last int64) bridge.PendingLeg {
			return bridge.PendingLeg{ConversationID: conv, Leg: leg, Cursor: cursor, Last: last}
		}
		for _, step := range []struct {
			name string
			do   func()
			want []bridge.PendingLeg
		}{
			{"appended", func() {}, []bridge.PendingLeg{p("p1", bot, -1, 1), p("p1", agent, -1, 1), p("p2", other, -1, 0)}},
			{"bot acknowledged all", func() { require.NoError(t, s.Ack(ctx, "p1", bot, 1)) },
				[]bridge.PendingLeg{p("p1", agent, -1, 1), p("p2", other, -1, 0)}},
			{"agent acknowledged part", func() { require.NoError(t, s.Ack(ctx, "p1", agent, 0)) },
				[]bridge.PendingLeg{p("p1", agent, 0, 1), p("p2", other, -1, 0)}},
			{"an ack past the last addressed", func() { require.NoError(t, s.Ack(ctx, "p2", other, 5)) },
				[]bridge.PendingLeg{p("p1", agent, 0, 1)}},
			{"a leg never addressed is not pending", func() { require.NoError(t, s.Ack(ctx, "p1", "directline/p1", 0)) },
				[]bridge.PendingLeg{p("p1", agent, 0, 1)}},
			{"addressed again", func() { appendN(t, s, "p1", 1, agent) },
				[]bridge.PendingLeg{p("p1", agent, 0, 3)}},
			{"reopened", func() { s = h.again(t, s) }, []bridge.PendingLeg{p("p1", agent, 0, 3)}},
			{"all delivered", func() { require.NoError(t, s.Ack(ctx, "p1", agent, 3)) }, nil},
			{"all delivered, reopened", func() { s = h.again(t, s) }, nil},
		} {
			step.do()
			require.Equal(t, step.want, pending(t, s), step.name)
		}
	})
}
