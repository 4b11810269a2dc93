// Package storetest is the contract every bridge.Store implementation must satisfy. Each
// implementation's tests call Run with a constructor for fresh, empty stores, and durable
// stores add WithReopen so that Run also checks what survives a restart.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Option configures Run.
type Option func(*harness)

// WithReopen declares the store durable: reopen closes s and returns a store opened on the same
// data, as a restarted bridge would. Run then checks that everything a store keeps (conversations
// with their versions, logs with their addressees, idempotency keys, cursors, pending deliveries,
// timers, values and files) survives.
func WithReopen(reopen func(t *testing.T, s bridge.Store) bridge.Store) Option {
	return func(h *harness) { h.reopen = reopen }
}

// harness is what the cases get: how to make a store, and how to reopen one (nil when the
// store keeps nothing across a restart).
type harness struct {
	newStore func(t *testing.T) bridge.Store
	reopen   func(t *testing.T, s bridge.Store) bridge.Store
}

// again reopens s when the store is durable, and returns s as it is otherwise.
func (h *harness) again(t *testing.T, s bridge.Store) bridge.Store {
	if h.reopen == nil {
		return s
	}
	return h.reopen(t, s)
}

// Run runs the contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) bridge.Store, opts ...Option) {
	h := &harness{newStore: newStore}
	for _, o := range opts {
		o(h)
	}
	t.Run("conversations", func(t *testing.T) { runConversations(t, h) })
	t.Run("log", func(t *testing.T) { runLog(t, h) })
	t.Run("trace context", func(t *testing.T) { runTrace(t, h) })
	t.Run("delivery", func(t *testing.T) { runDelivery(t, h) })
	t.Run("timers", func(t *testing.T) { runTimers(t, h) })
	t.Run("values", func(t *testing.T) { runValues(t, h) })
	t.Run("files", func(t *testing.T) { runBlobs(t, h) })
	t.Run("list", func(t *testing.T) { runList(t, h) })
	t.Run("erase", func(t *testing.T) { runErase(t, h) })
	if h.reopen != nil {
		t.Run("survives reopen", func(t *testing.T) { runReopen(t, h) })
	}
}

func conv(id string) *bridge.Conversation {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &bridge.Conversation{
		ID: id, State: bridge.StateBot, Created: now, Updated: now,
		Customer: bridge.Leg{Channel: "directline", ConversationID: id, User: activity.ChannelAccount{ID: "u1"},
			Identity: &bridge.Identity{Name: "Ada", Email: "ada@example.com"}},
		Bot: bridge.Leg{Channel: "botframework", ConversationID: id + "-bot"},
	}
}

func msg(text string) *activity.Activity { return &activity.Activity{Type: "message", Text: text} }

// entry is an Entry of a message from the customer.
func entry(text, key string, to ...string) bridge.Entry {
	return bridge.Entry{From: bridge.RoleCustomer, Activity: msg(text), Key: key, To: to}
}

// create stores a new conversation c and requires that it was created.
func create(t *testing.T, s bridge.Store, c *bridge.Conversation) *bridge.Conversation {
	t.Helper()
	stored, created, err := s.CreateConversation(context.Background(), c)
	require.NoError(t, err)
	require.True(t, created, "conversation %s created", c.ID)
	return stored
}

// appendN appends n messages "0" … "n-1" addressed to the legs in to and returns their seqs.
func appendN(t *testing.T, s bridge.Store, convID string, n int, to ...string) []int64 {
	t.Helper()
	seqs := make([]int64, n)
	for i := range n {
		seq, dup, err := s.Append(context.Background(), convID, entry(fmt.Sprint(i), "", to...))
		require.NoError(t, err)
		require.False(t, dup)
		seqs[i] = seq
	}
	return seqs
}

// concurrently runs f(0) … f(n-1) in n goroutines and waits for them.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

// pending returns the store's pending legs in a stable order.
func pending(t *testing.T, s bridge.Store) []bridge.PendingLeg {
	t.Helper()
	p, err := s.Pending(context.Background())
	require.NoError(t, err)
	slices.SortFunc(p, func(a, b bridge.PendingLeg) int {
		if c := strings.Compare(a.ConversationID, b.ConversationID); c != 0 {
			return c
		}
		return strings.Compare(a.Leg, b.Leg)
	})
	return p
}
