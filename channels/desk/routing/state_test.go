package routing

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// busyEngine has a conversation in every stage, declines, transfers, exclusions and an average.
func busyEngine(t *testing.T) (*Engine, *testClock) {
	e, clk := newEngine(t, escalationConfig)
	route(t, e, "bot", map[string]Value{"BotHandoffTopic": String("Billing")})
	route(t, e, "assigned", nil)
	_, err := e.Escalate("assigned", map[string]Value{"BotHandoffTopic": String("Nurse")})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	must(t)(e.Accept("nina", "assigned"))
	route(t, e, "offered", nil)
	_, err = e.Escalate("offered", nil)
	require.NoError(t, err)
	must(t)(e.Decline("alex", "offered"))
	must(t)(e.SetPresence("alex", Away))
	route(t, e, "waiting", nil)
	_, err = e.Escalate("waiting", map[string]Value{"BotHandoffTopic": String("Nurse"), "Score": Number(2.5)})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	return e, clk
}

func exportJSON(t *testing.T, e *Engine) []byte {
	b, err := json.Marshal(e.Export())
	require.NoError(t, err)
	return b
}

func TestExportRestoreRoundTrip(t *testing.T) {
	a, clk := busyEngine(t)
	saved := exportJSON(t, a)

	var s State
	require.NoError(t, json.Unmarshal(saved, &s))
	b, err := New(DefaultConfigFor(t, escalationConfig), clk.Now)
	require.NoError(t, err)
	require.NoError(t, b.Restore(s))
	require.JSONEq(t, string(saved), string(exportJSON(t, b)))
	require.Equal(t, a.Snapshot(), b.Snapshot())

	c, ok := b.Conversation("waiting")
	require.True(t, ok)
	require.Equal(t, Number(2.5), c.Context["Score"], "types survive: an undeclared number stays a number")
	require.Equal(t, []string{"triage"}, c.ExcludedBots)

	// Both engines go on the same way.
	step := func(e *Engine) []Event {
		var all []Event
		all = append(all, must(t)(e.SetPresence("alex", Available))...)
		all = append(all, must(t)(e.Release("nina", "assigned"))...)
		clk.Advance(3 * time.Minute)
		all = append(all, e.Tick()...)
		d, err := e.Route(WorkItem{ConversationID: "new", ExcludeBots: []string{"triage"}})
		require.NoError(t, err)
		return append(all, d.Events...)
	}
	evA := step(a)
	clk.Advance(-3 * time.Minute)
	evB := step(b)
	require.Equal(t, evA, evB)
	require.NotEmpty(t, offered(evA))
}

// DefaultConfigFor parses a test configuration.
func DefaultConfigFor(t *testing.T, doc string) *Config {
	cfg, err := ParseConfig("test.yaml", []byte(doc))
	require.NoError(t, err)
	return cfg
}

func TestRestoreWithChangedConfig(t *testing.T) {
	a, clk := busyEngine(t)
	s := a.Export()
	for i := range s.Agents {
		s.Agents[i].Presence = Available
	}
	changed := strings.NewReplacer(
		"agents: [{id: nina, name: Nina, profiles: [Chat]}, {id: alex, name: Alex, profiles: [Chat]}]", "agents: [{id: alex, name: Alex, profiles: [Chat]}]",
		"  - {name: Nurse, agents: [nina]}\n", "",
		"agents: [alex, nina]", "agents: [alex]",
		"queue: Nurse}", "queue: General}",
		"bots: [{id: triage, name: Triage bot}, {id: faq}]", "bots: [{id: faq}]",
		"bot: triage", "bot: faq",
		"bots: [triage, faq]", "bots: [faq]",
		"bots: [triage]", "bots: [faq]",
	).Replace(escalationConfig)
	b, err := New(DefaultConfigFor(t, changed), clk.Now)
	require.NoError(t, err)
	require.NoError(t, b.Restore(s))
	for id, want := range map[string]string{"bot": "General", "assigned": "General", "waiting": "General", "offered": "General"} {
		c, ok := b.Conversation(id)
		require.True(t, ok, id)
		require.Equal(t, StageWaiting, c.Stage, id)
		require.Equal(t, want, c.Queue, id)
	}
	ev := b.Tick()
	require.Equal(t, []string{"assigned→alex", "waiting→alex"}, offered(ev), "Tick resumes assignment, oldest first")

	require.ErrorContains(t, b.Restore(State{Version: 99}), "state version 99")
	require.ErrorIs(t, b.Restore(State{Version: StateVersion, Conversations: []ConversationState{{ID: "x", Workstream: "voice", Stage: StageWaiting}}}), ErrUnknownWorkstream)
	require.ErrorContains(t, b.Restore(State{Version: StateVersion, Conversations: []ConversationState{{ID: "x", Workstream: "chat", Stage: "lost"}}}), "unknown stage")
	require.ErrorContains(t, b.Restore(State{Version: StateVersion, Conversations: []ConversationState{{Workstream: "chat", Stage: StageBot}}}), "without id")
	twice := []ConversationState{{ID: "x", Workstream: "chat", Stage: StageBot, Bot: "faq"}, {ID: "x", Workstream: "chat", Stage: StageBot, Bot: "faq"}}
	require.ErrorContains(t, b.Restore(State{Version: StateVersion, Conversations: twice}), "twice")
}

func TestSnapshot(t *testing.T) {
	e, clk := busyEngine(t)
	s := e.Snapshot()
	require.Equal(t, clk.Now(), s.At)
	require.Len(t, s.Conversations, 4)

	queues := map[string]QueueSnapshot{}
	for _, q := range s.Queues {
		queues[q.Name] = q
	}
	require.Equal(t, 1, queues["Nurse"].Assigned)
	require.Equal(t, []WaitingItem{{ConversationID: "waiting", Position: 1, Waited: time.Minute}}, queues["Nurse"].Waiting)
	require.Equal(t, time.Minute, queues["Nurse"].OldestWait)
	require.Equal(t, 1, queues["General"].Offered)
	require.Equal(t, HighestCapacity, queues["Bots"].Assignment)
	require.Equal(t, 1, queues["Nurse"].Priority)

	nina, alex := s.Agents[0], s.Agents[1]
	require.Equal(t, "Nina", nina.Name)
	require.Equal(t, []string{"assigned", "offered"}, append(nina.Conversations, nina.Offered...))
	require.Equal(t, []ProfileLoad{{Profile: "Chat", Used: 2, Max: 2}}, nina.Profiles)
	require.Equal(t, BusyDND, nina.Presence)
	require.False(t, nina.Manual)
	require.Equal(t, Away, alex.Presence)
	require.True(t, alex.Manual)
	require.Empty(t, alex.Offered)
}

func TestConcurrentUse(t *testing.T) {
	e, clk := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, agents: [a, b, c]}]
capacity_profiles: [{name: Chat, max_units: 2}]
agents: [{id: a, profiles: [Chat]}, {id: b, profiles: [Chat]}, {id: c, profiles: [Chat]}]
`)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, err := e.Route(WorkItem{ConversationID: id}); err != nil {
					t.Error(err)
					return
				}
				if c, ok := e.Conversation(id); ok && c.Stage == StageOffered {
					_, _ = e.Accept(c.Agent, id)
				}
				_, _ = e.End(id)
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			_, _ = e.SetPresence("c", []Presence{Away, Available}[i%2])
			clk.Advance(time.Second)
			e.Tick()
			_ = e.Snapshot()
			_ = e.Export()
		}
	})
	wg.Wait()
	_, err := e.SetPresence("c", Available)
	require.NoError(t, err)
	s := e.Snapshot()
	require.Empty(t, s.Conversations)
	for _, a := range s.Agents {
		require.Equal(t, 0, a.Profiles[0].Used, a.ID)
		require.Equal(t, Available, a.Presence, a.ID)
	}
}
