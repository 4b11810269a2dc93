package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// runLog checks appends, reads, idempotency keys and wake-ups.
func runLog(t *testing.T, h *harness) {
	ctx := context.Background()

	t.Run("append assigns sequence numbers and ids from zero", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c2"))
		last, err := s.Last(ctx, "c2")
		require.NoError(t, err)
		require.Equal(t, int64(-1), last)
		for i := range 3 {
			e := entry(fmt.Sprint(i), "")
			seq, dup, err := s.Append(ctx, "c2", e)
			require.NoError(t, err)
			require.False(t, dup)
			require.Equal(t, int64(i), seq)
			require.Equal(t, fmt.Sprintf("c2|%07d", i), e.Activity.ID)
		}
		recs, err := s.Since(ctx, "c2", -1, 0)
		require.NoError(t, err)
		require.Len(t, recs, 3)
		require.Equal(t, "c2|0000002", recs[2].Activity.ID)
		require.Equal(t, bridge.RoleCustomer, recs[2].From)
		recs, err = s.Since(ctx, "c2", 0, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, int64(1), recs[0].Seq)
		recs, err = s.Since(ctx, "c2", 2, 10)
		require.NoError(t, err)
		require.Empty(t, recs)
		last, err = s.Last(ctx, "c2")
		require.NoError(t, err)
		require.Equal(t, int64(2), last)
		_, _, err = s.Append(ctx, "missing", entry("x", ""))
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		_, _, err = s.Append(ctx, "c2", bridge.Entry{From: bridge.RoleBot})
		require.Error(t, err, "no activity")
	})

	t.Run("every read of a long log gives the same records, with their JSON and addressees", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c13"))
		const n = 40 // longer than any in-memory tail a store keeps for live readers
		for i := range n {
			_, _, err := s.Append(ctx, "c13", bridge.Entry{From: bridge.RoleBot, Activity: msg(fmt.Sprint(i)), To: addressees(i)})
			require.NoError(t, err)
		}
		for _, after := range []int64{-1, 0, 5, 20, 23, 24, 30, 38, 39, 45} {
			for _, limit := range []int{0, 1, 7, 100} {
				recs, err := s.Since(ctx, "c13", after, limit)
				require.NoError(t, err)
				want := max(min(int64(n-1)-after, int64(n)), 0)
				if limit > 0 {
					want = min(want, int64(limit))
				}
				require.Len(t, recs, int(want), "after %d limit %d", after, limit)
				for i, r := range recs {
					seq := after + 1 + int64(i)
					require.Equal(t, seq, r.Seq)
					require.Equal(t, fmt.Sprint(seq), r.Activity.Text)
					require.Equal(t, bridge.FormatActivityID("c13", seq), r.Activity.ID)
					require.ElementsMatch(t, addressees(int(seq)), r.To, "seq %d", seq)
					enc, err := activity.Marshal(r.Activity)
					require.NoError(t, err)
					require.JSONEq(t, string(enc), string(r.Raw), "Raw is the record's activity")
				}
			}
		}
	})

	t.Run("append keeps the whole activity", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c3"))
		a, err := activity.Decode([]byte(`{"type":"message","text":"x","channelData":{"clientActivityID":"k"},"unknown":[1]}`))
		require.NoError(t, err)
		_, _, err = s.Append(ctx, "c3", bridge.Entry{From: bridge.RoleCustomer, Activity: a})
		require.NoError(t, err)
		recs, err := s.Since(ctx, "c3", -1, 0)
		require.NoError(t, err)
		out, err := activity.Marshal(recs[0].Activity)
		require.NoError(t, err)
		require.JSONEq(t, `{"type":"message","id":"c3|0000000","text":"x","channelData":{"clientActivityID":"k"},"unknown":[1]}`, string(out))
	})

	t.Run("records carry role, time and addressees", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c9"))
		before := time.Now().Add(-time.Minute)
		for _, tc := range []struct {
			name string
			from bridge.Role
			to   []string
		}{
			{"to no leg", bridge.RoleAgent, nil},
			{"to one leg", bridge.RoleCustomer, []string{"botframework/c9-bot"}},
			{"to two legs", bridge.RoleBot, []string{"directline/c9", "desk/a 1|x\"y"}},
		} {
			seq, _, err := s.Append(ctx, "c9", bridge.Entry{From: tc.from, Activity: msg(tc.name), To: tc.to})
			require.NoError(t, err, tc.name)
			recs, err := s.Since(ctx, "c9", seq-1, 1)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			require.Equal(t, tc.from, recs[0].From, tc.name)
			require.Equal(t, tc.name, recs[0].Activity.Text)
			require.ElementsMatch(t, tc.to, recs[0].To, tc.name)
			require.True(t, recs[0].At.After(before), "At %v", recs[0].At)
			for _, k := range tc.to {
				require.True(t, recs[0].Addressed(k), tc.name)
			}
		}
	})

	t.Run("a repeated idempotency key returns the first record and appends nothing", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c4"))
		seq1, dup, err := s.Append(ctx, "c4", entry("a", "k1", "botframework/c4-bot"))
		require.NoError(t, err)
		require.False(t, dup)
		_, _, err = s.Append(ctx, "c4", entry("b", ""))
		require.NoError(t, err)
		again := entry("a, again", "k1", "desk/agent")
		seq2, dup, err := s.Append(ctx, "c4", again)
		require.NoError(t, err)
		require.True(t, dup)
		require.Equal(t, seq1, seq2)
		require.Equal(t, "c4|0000000", again.Activity.ID, "the first record's id")
		last, err := s.Last(ctx, "c4")
		require.NoError(t, err)
		require.Equal(t, int64(1), last, "nothing appended")
		recs, err := s.Since(ctx, "c4", -1, 0)
		require.NoError(t, err)
		require.Equal(t, "a", recs[0].Activity.Text)
		require.Equal(t, []string{"botframework/c4-bot"}, recs[0].To)
		require.Equal(t, []bridge.PendingLeg{{ConversationID: "c4", Leg: "botframework/c4-bot", Cursor: -1, Last: 0}},
			pending(t, s), "the repeat addresses no one")
	})

	t.Run("idempotency keys are per conversation", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c10"))
		create(t, s, conv("c11"))
		_, _, err := s.Append(ctx, "c10", entry("a", ""))
		require.NoError(t, err)
		seq, dup, err := s.Append(ctx, "c10", entry("b", "same"))
		require.NoError(t, err)
		require.False(t, dup)
		require.Equal(t, int64(1), seq)
		seq, dup, err = s.Append(ctx, "c11", entry("b", "same"))
		require.NoError(t, err)
		require.False(t, dup, "a key seen in another conversation is new here")
		require.Equal(t, int64(0), seq)
	})

	t.Run("concurrent retries with one key append once", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c12"))
		type result struct {
			seq int64
			dup bool
			id  string
			err error
		}
		results := make([]result, 16)
		concurrently(16, func(i int) {
			e := entry("retry", "client-1")
			seq, dup, err := s.Append(ctx, "c12", e)
			results[i] = result{seq, dup, e.Activity.ID, err}
		})
		firsts := 0
		for _, r := range results {
			require.NoError(t, r.err)
			require.Equal(t, int64(0), r.seq)
			require.Equal(t, "c12|0000000", r.id)
			if !r.dup {
				firsts++
			}
		}
		require.Equal(t, 1, firsts)
		last, err := s.Last(ctx, "c12")
		require.NoError(t, err)
		require.Equal(t, int64(0), last)
	})

	t.Run("unknown conversations", func(t *testing.T) {
		s := h.newStore(t)
		_, err := s.Since(ctx, "ghost", -1, 0)
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		_, err = s.Last(ctx, "ghost")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		cur, err := s.Cursor(ctx, "ghost", "bot")
		require.NoError(t, err)
		require.Equal(t, int64(-1), cur)
		// watching or acknowledging does not make it known (Ack may fail or not)
		stop := s.Watch("ghost", -1, func() {})
		_ = s.Ack(ctx, "ghost", "bot", 3)
		_, err = s.Since(ctx, "ghost", -1, 0)
		require.ErrorIs(t, err, bridge.ErrUnknownConversation, "after a watch")
		_, err = s.Last(ctx, "ghost")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation, "after a watch")
		stop()
		// a conversation created without appends has an empty log, not an unknown one
		create(t, s, conv("c8"))
		recs, err := s.Since(ctx, "c8", -1, 0)
		require.NoError(t, err)
		require.Empty(t, recs)
	})

	t.Run("watch calls back on append, once, unless stopped", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c5"))
		calls := make(chan string, 4)
		s.Watch("c5", -1, func() { calls <- "first" })
		stop := s.Watch("c5", -1, func() { calls <- "stopped" })
		require.True(t, stop(), "stopped before the append")
		require.False(t, stop(), "stops once")
		select {
		case c := <-calls:
			t.Fatalf("%s called before any append", c)
		case <-time.After(50 * time.Millisecond):
		}
		_, _, err := s.Append(ctx, "c5", entry("x", ""))
		require.NoError(t, err)
		select {
		case c := <-calls:
			require.Equal(t, "first", c)
		case <-time.After(5 * time.Second):
			t.Fatal("not called by the append")
		}
		_, _, err = s.Append(ctx, "c5", entry("y", ""))
		require.NoError(t, err)
		late := s.Watch("c5", 0, func() { calls <- "already past" })
		select {
		case c := <-calls:
			require.Equal(t, "already past", c, "a watch for an older sequence is called at once")
		case <-time.After(5 * time.Second):
			t.Fatal("a watch for an older sequence must be called at once")
		}
		require.False(t, late(), "too late to stop")
		select {
		case c := <-calls:
			t.Fatalf("%s called twice or after being stopped", c)
		case <-time.After(50 * time.Millisecond):
		}
		select {
		case <-bridge.Notify(s, "c5", 1):
			t.Fatal("notify woke with nothing new")
		case <-time.After(20 * time.Millisecond):
		}
	})

	t.Run("concurrent appends get distinct consecutive numbers", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("c7"))
		seqs := make([][]int64, 4)
		errs := make([]error, 4)
		concurrently(4, func(w int) {
			for range 50 {
				seq, _, err := s.Append(ctx, "c7", entry("x", "", "botframework/c7-bot"))
				if err != nil {
					errs[w] = err
					return
				}
				seqs[w] = append(seqs[w], seq)
			}
		})
		got := map[int64]bool{}
		for w := range seqs {
			require.NoError(t, errs[w])
			for _, seq := range seqs[w] {
				require.False(t, got[seq], "seq %d twice", seq)
				got[seq] = true
			}
		}
		require.Len(t, got, 200)
		for i := range int64(200) {
			require.True(t, got[i], "seq %d missing", i)
		}
		require.Equal(t, []bridge.PendingLeg{{ConversationID: "c7", Leg: "botframework/c7-bot", Cursor: -1, Last: 199}},
			pending(t, s), "the highest addressed seq")
	})
}

// addressees is what the long-log case addresses record i to: nobody, one leg or two.
func addressees(i int) []string {
	switch i % 3 {
	case 1:
		return []string{"botframework/c13-bot"}
	case 2:
		return []string{"directline/c13", fmt.Sprintf("desk/agent-%d", i)}
	}
	return nil
}

// runTrace checks that a record's trace context (Entry.Trace) is kept beside its activity —
// read back with it, across a restart, but never in its JSON, which readers send to peers.
func runTrace(t *testing.T, h *harness) {
	ctx := context.Background()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s := h.newStore(t)
	create(t, s, conv("c30"))
	_, _, err := s.Append(ctx, "c30", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("traced"), To: []string{"botframework/c30-bot"}, Trace: tp})
	require.NoError(t, err)
	_, _, err = s.Append(ctx, "c30", entry("untraced", ""))
	require.NoError(t, err)
	for i := range 2 {
		if i == 1 {
			s = h.again(t, s)
		}
		recs, err := s.Since(ctx, "c30", -1, 0)
		require.NoError(t, err)
		require.Len(t, recs, 2)
		require.Equal(t, tp, recs[0].Trace)
		require.Empty(t, recs[1].Trace)
		require.NotContains(t, string(recs[0].Raw), "4bf92f3577b34da6a3ce929d0e0e4736", "the trace context is not activity content")
	}
}
