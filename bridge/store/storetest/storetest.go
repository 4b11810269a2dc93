// Package storetest is the contract every bridge.Store implementation must satisfy. Each
// implementation's tests call Run with a constructor for fresh, empty stores.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

func conv(id string) *bridge.Conversation {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &bridge.Conversation{
		ID: id, State: bridge.StateBot, Created: now, Updated: now,
		Customer: bridge.Leg{Channel: "directline", ConversationID: id, User: activity.ChannelAccount{ID: "u1"}},
		Bot:      bridge.Leg{Channel: "botframework", ConversationID: id + "-bot"},
	}
}

func msg(text string) *activity.Activity { return &activity.Activity{Type: "message", Text: text} }

// Run runs the contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) bridge.Store) {
	ctx := context.Background()

	t.Run("conversations by id and by every leg", func(t *testing.T) {
		s := newStore(t)
		c := conv("c1")
		c.Context = handoff.Variables{"Topic": handoff.String("Nurse"), "Tries": handoff.Integer(2)}
		require.NoError(t, s.PutConversation(ctx, c))
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
	})

	t.Run("append assigns sequence numbers and ids from zero", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c2")))
		last, err := s.Last(ctx, "c2")
		require.NoError(t, err)
		require.Equal(t, int64(-1), last)
		for i := range 3 {
			a := msg(fmt.Sprint(i))
			seq, dup, err := s.Append(ctx, "c2", bridge.RoleCustomer, a, "")
			require.NoError(t, err)
			require.False(t, dup)
			require.Equal(t, int64(i), seq)
			require.Equal(t, fmt.Sprintf("c2|%07d", i), a.ID)
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
		_, _, err = s.Append(ctx, "missing", bridge.RoleBot, msg("x"), "")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	})

	t.Run("every read of a long log gives the same records, with their JSON", func(t *testing.T) {
		s := newStore(t)
		c := conv("c13")
		require.NoError(t, s.PutConversation(ctx, c))
		c.State, c.Customer.User.ID = bridge.StateEnded, "changed" // the store kept its own copy
		got, err := s.Conversation(ctx, "c13")
		require.NoError(t, err)
		require.Equal(t, bridge.StateBot, got.State)
		require.Equal(t, "u1", got.Customer.User.ID)
		const n = 40 // longer than any in-memory tail a store keeps for live readers
		for i := range n {
			_, _, err := s.Append(ctx, "c13", bridge.RoleBot, msg(fmt.Sprint(i)), "")
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
					enc, err := activity.Marshal(r.Activity)
					require.NoError(t, err)
					require.JSONEq(t, string(enc), string(r.Raw), "Raw is the record's activity")
				}
			}
		}
	})

	t.Run("append keeps the whole activity", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c3")))
		a, err := activity.Decode([]byte(`{"type":"message","text":"x","channelData":{"clientActivityID":"k"},"unknown":[1]}`))
		require.NoError(t, err)
		_, _, err = s.Append(ctx, "c3", bridge.RoleCustomer, a, "")
		require.NoError(t, err)
		recs, err := s.Since(ctx, "c3", -1, 0)
		require.NoError(t, err)
		out, err := activity.Marshal(recs[0].Activity)
		require.NoError(t, err)
		require.JSONEq(t, `{"type":"message","id":"c3|0000000","text":"x","channelData":{"clientActivityID":"k"},"unknown":[1]}`, string(out))
	})

	t.Run("idempotency key returns the first record", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c4")))
		seq1, dup, err := s.Append(ctx, "c4", bridge.RoleBot, msg("a"), "k1")
		require.NoError(t, err)
		require.False(t, dup)
		again := msg("a")
		seq2, dup, err := s.Append(ctx, "c4", bridge.RoleBot, again, "k1")
		require.NoError(t, err)
		require.True(t, dup)
		require.Equal(t, seq1, seq2)
		require.Equal(t, "c4|0000000", again.ID)
		last, err := s.Last(ctx, "c4")
		require.NoError(t, err)
		require.Equal(t, int64(0), last)
	})

	t.Run("unknown conversations", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Since(ctx, "ghost", -1, 0)
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		_, err = s.Last(ctx, "ghost")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		cur, err := s.Cursor(ctx, "ghost", "bot")
		require.NoError(t, err)
		require.Equal(t, int64(-1), cur)
		// a conversation put without appends has an empty log, not an unknown one
		require.NoError(t, s.PutConversation(ctx, conv("c8")))
		recs, err := s.Since(ctx, "c8", -1, 0)
		require.NoError(t, err)
		require.Empty(t, recs)
	})

	t.Run("records carry role and time", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c9")))
		before := time.Now().Add(-time.Minute)
		_, _, err := s.Append(ctx, "c9", bridge.RoleAgent, msg("hi"), "")
		require.NoError(t, err)
		recs, err := s.Since(ctx, "c9", -1, 0)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, bridge.RoleAgent, recs[0].From)
		require.Equal(t, "hi", recs[0].Activity.Text)
		require.True(t, recs[0].At.After(before), "At %v", recs[0].At)
	})

	t.Run("idempotency keys are per conversation", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c10")))
		require.NoError(t, s.PutConversation(ctx, conv("c11")))
		_, _, err := s.Append(ctx, "c10", bridge.RoleCustomer, msg("a"), "")
		require.NoError(t, err)
		seq, dup, err := s.Append(ctx, "c10", bridge.RoleCustomer, msg("b"), "same")
		require.NoError(t, err)
		require.False(t, dup)
		require.Equal(t, int64(1), seq)
		seq, dup, err = s.Append(ctx, "c11", bridge.RoleCustomer, msg("b"), "same")
		require.NoError(t, err)
		require.False(t, dup, "a key seen in another conversation is new here")
		require.Equal(t, int64(0), seq)
	})

	t.Run("concurrent retries with one key append once", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c12")))
		var wg sync.WaitGroup
		type result struct {
			seq int64
			dup bool
			id  string
			err error
		}
		results := make(chan result, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := msg("retry")
				seq, dup, err := s.Append(ctx, "c12", bridge.RoleCustomer, a, "client-1")
				results <- result{seq, dup, a.ID, err}
			}()
		}
		wg.Wait()
		close(results)
		firsts := 0
		for r := range results {
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

	t.Run("watch calls back on append, once, unless stopped", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c5")))
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
		_, _, err := s.Append(ctx, "c5", bridge.RoleCustomer, msg("x"), "")
		require.NoError(t, err)
		select {
		case c := <-calls:
			require.Equal(t, "first", c)
		case <-time.After(5 * time.Second):
			t.Fatal("not called by the append")
		}
		_, _, err = s.Append(ctx, "c5", bridge.RoleCustomer, msg("y"), "")
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

	t.Run("cursors", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c6")))
		cur, err := s.Cursor(ctx, "c6", "bot")
		require.NoError(t, err)
		require.Equal(t, int64(-1), cur)
		require.NoError(t, s.Ack(ctx, "c6", "bot", 4))
		require.NoError(t, s.Ack(ctx, "c6", "bot", 2)) // never moves back
		cur, err = s.Cursor(ctx, "c6", "bot")
		require.NoError(t, err)
		require.Equal(t, int64(4), cur)
	})

	t.Run("named values", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Value(ctx, "routing")
		require.ErrorIs(t, err, bridge.ErrNotFound)
		require.NoError(t, s.PutValue(ctx, "routing", []byte(`{"v":1}`)))
		require.NoError(t, s.PutValue(ctx, "routing", []byte(`{"v":2}`)))
		v, err := s.Value(ctx, "routing")
		require.NoError(t, err)
		require.Equal(t, `{"v":2}`, string(v))
	})

	t.Run("concurrent appends get distinct consecutive numbers", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutConversation(ctx, conv("c7")))
		var wg sync.WaitGroup
		seen := make(chan int64, 200)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					seq, _, err := s.Append(ctx, "c7", bridge.RoleCustomer, msg("x"), "")
					if err == nil {
						seen <- seq
					}
				}
			}()
		}
		wg.Wait()
		close(seen)
		got := map[int64]bool{}
		for seq := range seen {
			require.False(t, got[seq], "seq %d twice", seq)
			got[seq] = true
		}
		require.Len(t, got, 200)
		for i := range int64(200) {
			require.True(t, got[i], "seq %d missing", i)
		}
	})
}
