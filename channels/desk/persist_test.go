package desk

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// countingStore counts the values written, by conversation and key.
type countingStore struct {
	bridge.Store
	mu   sync.Mutex
	puts map[string]int
}

func (s *countingStore) PutValue(ctx context.Context, convID, key string, v []byte) error {
	s.mu.Lock()
	s.puts[convID+"/"+key]++
	s.mu.Unlock()
	return s.Store.PutValue(ctx, convID, key, v)
}

func (s *countingStore) count(convID, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts[convID+"/"+key]
}

// deskBridge is a Hub with the sandbox bot and the desk on store, as a bridge run has them.
func deskBridge(t *testing.T, store bridge.Store) (*bridge.Hub, *Desk) {
	t.Helper()
	hub := bridge.NewHub(store, bridge.HubConfig{BotChannel: BotChannelName, EscalationChannel: ChannelName, DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	bot := NewBot(hub, DefaultScript(), zerolog.Nop())
	t.Cleanup(bot.Close)
	d, err := New(hub, fakeTokens{}, Config{Routing: presenceOnly(), TickInterval: 50 * time.Millisecond}, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(d.Close)
	hub.Register(&customer{})
	hub.Register(bot)
	hub.Register(d)
	return hub, d
}

// storedStage reads a conversation's stored routing stage ("" when it has no task).
func storedStage(t *testing.T, store bridge.Store, convID string) routing.Stage {
	t.Helper()
	raw, err := store.Value(context.Background(), convID, taskKey)
	if err != nil {
		require.ErrorIs(t, err, bridge.ErrNotFound)
		return ""
	}
	var st storedTask
	require.NoError(t, json.Unmarshal(raw, &st))
	return st.Routing.Stage
}

// Each task is its conversation's value, written when it changes: a second conversation's
// routing does not rewrite the first's; a restarted desk (a new Hub and Desk on the same store)
// has both tasks back, with what the desk knew of them; a conversation leaving routing takes
// its task with it.
func TestDeskStatePerTask(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memory.New(), puts: map[string]int{}}
	hub, d := deskBridge(t, store)
	escalate := func(hub *bridge.Hub, id string) bridge.Leg {
		leg := bridge.Leg{Channel: "directline", ConversationID: id, User: activity.ChannelAccount{ID: "u-" + id, Name: "Uma " + id}}
		_, _, err := hub.Start(ctx, id, leg)
		require.NoError(t, err)
		say(t, hub, leg, "I want to talk to a human")
		require.Eventually(t, func() bool { return storedStage(t, store, id) == routing.StageOffered }, 5*time.Second, 10*time.Millisecond, id+" offered, and stored")
		return leg
	}
	escalate(hub, "c1")
	c1Writes := store.count("c1", taskKey)
	escalate(hub, "c2")
	offer, ok := d.engine.Conversation("c2")
	require.True(t, ok)
	agent := offer.Agent
	require.NoError(t, d.command(ctx, agent, deskMsg{Type: "accept", ConversationID: "c2"}))
	require.Eventually(t, func() bool { return storedStage(t, store, "c2") == routing.StageAssigned }, 5*time.Second, 10*time.Millisecond, "c2 assigned, and stored")
	require.Equal(t, c1Writes, store.count("c1", taskKey), "c1's task is not rewritten for c2's routing")
	require.Zero(t, store.count("", "desk/state"), "no whole-desk blob")
	_, err := store.Value(ctx, "", routingKey)
	require.NoError(t, err, "the shared routing state is stored")

	want := map[string]routing.ConversationState{}
	for _, id := range []string{"c1", "c2"} {
		c, ok := d.engine.Conversation(id)
		require.True(t, ok)
		want[id] = c
	}
	d.Close()
	hub.Close()

	hub2, d2 := deskBridge(t, store)
	for id, w := range want {
		got, ok := d2.engine.Conversation(id)
		require.True(t, ok, id)
		require.Equal(t, w.Stage, got.Stage, id)
		require.Equal(t, w.Agent, got.Agent, id)
		require.Equal(t, w.Queue, got.Queue, id)
	}
	d2.mu.Lock()
	require.Equal(t, "Uma c1", d2.convs["c1"].Customer, "what the desk knew of it")
	d2.mu.Unlock()
	require.True(t, d2.holds(agent, "c2"))

	require.NoError(t, d2.command(ctx, agent, deskMsg{Type: "end", ConversationID: "c2"}))
	require.Eventually(t, func() bool { return storedStage(t, store, "c2") == "" }, 5*time.Second, 10*time.Millisecond, "c2's task leaves with it")
	require.Eventually(t, func() bool {
		c, err := hub2.Conversation(ctx, "c2")
		return err == nil && c.State == bridge.StateEnded
	}, 5*time.Second, 10*time.Millisecond,

		"c2 ended")

	require.Equal(t, routing.StageOffered, storedStage(t, store, "c1"))
}
