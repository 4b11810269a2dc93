package routing

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const rulesConfig = `
workstreams:
  - name: chat
    variables: {Topic: string, Priority: integer, Score: number, VIP: boolean}
    rules:
      - name: vip nurse
        when: {all: [{var: Topic, op: equals, value: Nurse}, {var: VIP, op: equals, value: true}]}
        queue: VIP
      - name: nurse
        when: {var: Topic, op: equals, value: Nurse}
        queue: Nurse
      - name: urgent
        when: {any: [{var: Priority, op: greater_than, value: 5}, {var: Score, op: less_than, value: 1.5}]}
        queue: Urgent
    fallback_queue: General
    capacity: {profile: Chat}
  - name: email
    fallback_queue: Nurse
    capacity: {units: 10}
queues: [{name: VIP}, {name: Nurse}, {name: Urgent}, {name: General}]
capacity_profiles: [{name: Chat, max_units: 1}]
`

func TestRouteToQueueRules(t *testing.T) {
	cases := []struct {
		name     string
		ctx      map[string]Value
		queue    string
		rule     string
		fallback bool
	}{
		{"no context: fallback", nil, "General", "", true},
		{"no rule matches: fallback", map[string]Value{"Topic": String("Billing")}, "General", "", true},
		{"one rule", map[string]Value{"Topic": String("Nurse")}, "Nurse", "nurse", false},
		{"text ignores case", map[string]Value{"Topic": String("nURSE")}, "Nurse", "nurse", false},
		{"first match wins over a later rule", map[string]Value{"Topic": String("Nurse"), "VIP": Boolean(true)}, "VIP", "vip nurse", false},
		{"first match wins, in rule order", map[string]Value{"Topic": String("Nurse"), "Priority": Integer(9)}, "Nurse", "nurse", false},
		{"AND needs both", map[string]Value{"Topic": String("Nurse"), "VIP": Boolean(false)}, "Nurse", "nurse", false},
		{"text true becomes a boolean", map[string]Value{"Topic": String("Nurse"), "VIP": String("true")}, "VIP", "vip nurse", false},
		{"OR, first branch", map[string]Value{"Priority": Integer(6)}, "Urgent", "urgent", false},
		{"OR, second branch", map[string]Value{"Score": Number(1.2)}, "Urgent", "urgent", false},
		{"numeric text becomes an integer", map[string]Value{"Priority": String("7")}, "Urgent", "urgent", false},
		{"integer becomes a number", map[string]Value{"Score": Integer(1)}, "Urgent", "urgent", false},
		{"type mismatch matches nothing", map[string]Value{"Priority": String("high")}, "General", "", true},
		{"names are case-sensitive", map[string]Value{"topic": String("Nurse")}, "General", "", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t, rulesConfig)
			d := route(t, e, fmt.Sprint("c", i), tc.ctx)
			require.Equal(t, tc.queue, d.Queue)
			require.Equal(t, tc.rule, d.Rule)
			require.Equal(t, tc.fallback, d.Fallback)
			require.Equal(t, StageWaiting, d.Stage)
			require.Equal(t, 1, d.Position)
			require.Equal(t, []EventKind{EventQueued, EventMessage, EventMessage}, kinds(d.Events))
		})
	}
}

func TestRouteErrors(t *testing.T) {
	e, _ := newEngine(t, rulesConfig)
	_, err := e.Route(WorkItem{ConversationID: "c1", Workstream: "voice"})
	require.ErrorIs(t, err, ErrUnknownWorkstream)
	_, err = e.Route(WorkItem{})
	require.ErrorIs(t, err, ErrUnknownConversation)
	route(t, e, "c1", nil)
	_, err = e.Route(WorkItem{ConversationID: "c1"})
	require.ErrorIs(t, err, ErrConversationExists)
	d, err := e.Route(WorkItem{ConversationID: "c2", Workstream: "email"})
	require.NoError(t, err)
	require.Equal(t, "Nurse", d.Queue)
	_, err = e.Accept("ghost", "c1")
	require.ErrorIs(t, err, ErrUnknownAgent)
	_, err = e.End("ghost")
	require.ErrorIs(t, err, ErrUnknownConversation)
	_, err = e.SetPresence("ghost", Available)
	require.ErrorIs(t, err, ErrUnknownAgent)
}

func TestHighestCapacity(t *testing.T) {
	t.Run("profile capacity, round robin among ties", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, assignment: highest_capacity, agents: [a, b, c]}]
capacity_profiles: [{name: Chat, max_units: 4}]
agents: [{id: a, profiles: {Chat: 2}}, {id: b, profiles: [Chat]}, {id: c, profiles: [Chat]}]
`)
		var got []string
		for i := 1; i <= 5; i++ {
			got = append(got, route(t, e, fmt.Sprint("c", i), nil).Agent)
		}
		// b and c tie at 4 (b first in the queue), then alternate; at 2 each, a (never
		// assigned) wins the round robin.
		require.Equal(t, []string{"b", "c", "b", "c", "a"}, got)
	})
	t.Run("unit capacity, then full", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {units: 30}}]
queues: [{name: Q, agents: [a, b]}]
agents: [{id: a, capacity: 100}, {id: b, capacity: 60}]
`)
		var got []string
		for i := 1; i <= 6; i++ {
			got = append(got, route(t, e, fmt.Sprint("c", i), nil).Agent)
		}
		// free units: a 100/b 60 → a; 70/60 → a; 40/60 → b; 40/30 → a; 10/30 → b; 10/0: nobody fits 30.
		require.Equal(t, []string{"a", "a", "b", "a", "b", ""}, got)
		s, _ := stage(e, "c6")
		require.Equal(t, StageWaiting, s)
		snap := e.Snapshot()
		require.Equal(t, 90, snap.Agents[0].UnitsUsed)
		require.Equal(t, 60, snap.Agents[1].UnitsUsed)
	})
	t.Run("agents without the profile get nothing", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, agents: [a, b]}]
capacity_profiles: [{name: Chat, max_units: 2}, {name: Voice, max_units: 1}]
agents: [{id: a, profiles: [Voice]}, {id: b, profiles: [Chat]}]
`)
		require.Equal(t, "b", route(t, e, "c1", nil).Agent)
		require.Equal(t, "b", route(t, e, "c2", nil).Agent)
		require.Equal(t, "", route(t, e, "c3", nil).Agent)
	})
}

func TestAdvancedRoundRobin(t *testing.T) {
	e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, assignment: advanced_round_robin, agents: [a, b, c]}]
capacity_profiles: [{name: Chat, max_units: 10}]
agents: [{id: a, profiles: {Chat: 1}}, {id: b, profiles: [Chat]}, {id: c, profiles: [Chat]}]
`)
	next := func(id string) string { return route(t, e, id, nil).Agent }
	require.Equal(t, "a", next("c1"), "initial order: the order members were added")
	require.Equal(t, "b", next("c2"), "round robin ignores available capacity")
	require.Equal(t, "c", next("c3"))
	require.Equal(t, "b", next("c4"), "a is full (limit 1): skipped, next after c is b")
	must(t)(e.SetPresence("c", Away))
	require.Equal(t, "b", next("c5"), "c is away; a full")
	must(t)(e.Accept("a", "c1"))
	must(t)(e.Release("a", "c1"))
	must(t)(e.SetPresence("c", Available))
	require.Equal(t, "a", next("c6"), "a, then c, were assigned longest ago")
	require.Equal(t, "c", next("c7"))
	require.Equal(t, "b", next("c8"))
}

func TestCapacityFullWaitsThenServesInOrder(t *testing.T) {
	e, clk := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, profiles: [Chat]}]
`)
	require.Equal(t, "a", route(t, e, "c1", nil).Agent)
	for i, id := range []string{"c2", "c3"} {
		clk.Advance(time.Second)
		d := route(t, e, id, nil)
		require.Equal(t, StageWaiting, d.Stage)
		require.Equal(t, i+1, d.Position)
	}
	must(t)(e.Accept("a", "c1"))
	ev := must(t)(e.Release("a", "c1"))
	require.Equal(t, []string{"c2→a"}, offered(ev))
	ev = must(t)(e.End("c2"))
	require.Equal(t, []string{"c3→a"}, offered(ev), "an end frees capacity too")
	require.Len(t, of(ev, EventReleased), 1)
}

func TestPresence(t *testing.T) {
	for _, tc := range []struct {
		presence Presence
		gets     bool
	}{{Available, true}, {Busy, true}, {BusyDND, false}, {Away, false}, {Offline, false}} {
		t.Run(string(tc.presence)+" with the default allowed presences", func(t *testing.T) {
			e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 3}]
agents: [{id: a, profiles: [Chat], presence: Offline}]
`)
			must(t)(e.SetPresence("a", tc.presence))
			d := route(t, e, "c1", nil)
			require.Equal(t, tc.gets, d.Agent == "a", d.Stage)
		})
	}
	t.Run("allowed presences are the workstream's", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}, allowed_presences: [Available, Away]}]
queues: [{name: Q, agents: [a, b]}]
capacity_profiles: [{name: Chat, max_units: 3}]
agents: [{id: a, profiles: [Chat], presence: Busy}, {id: b, profiles: [Chat], presence: Away}]
`)
		require.Equal(t, "b", route(t, e, "c1", nil).Agent)
	})
	t.Run("going Available assigns waiting work, oldest first", func(t *testing.T) {
		e, clk := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 2}]
agents: [{id: a, profiles: [Chat], presence: Offline}]
`)
		for _, id := range []string{"c1", "c2", "c3"} {
			clk.Advance(time.Minute)
			require.Empty(t, route(t, e, id, nil).Agent)
		}
		ev := must(t)(e.SetPresence("a", Available))
		require.Equal(t, []string{"c1→a", "c2→a"}, offered(ev))
		s, _ := stage(e, "c3")
		require.Equal(t, StageWaiting, s)
	})
	t.Run("queue priority before age", func(t *testing.T) {
		e, clk := newEngine(t, `
workstreams:
  - name: chat
    variables: {Q: string}
    rules: [{when: {var: Q, op: equals, value: high}, queue: High}]
    fallback_queue: Low
    capacity: {profile: Chat}
queues: [{name: Low, priority: 2, agents: [a]}, {name: High, priority: 1, agents: [a]}, {name: Same, priority: 2, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, profiles: [Chat], presence: Away}]
`)
		route(t, e, "old-low", nil)
		clk.Advance(time.Minute)
		route(t, e, "new-high", map[string]Value{"Q": String("high")})
		ev := must(t)(e.SetPresence("a", Available))
		require.Equal(t, []string{"new-high→a"}, offered(ev))
	})
	t.Run("offline withdraws offers and disconnects conversations", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, assignment: advanced_round_robin, agents: [a, b]}]
capacity_profiles: [{name: Chat, max_units: 3}]
agents: [{id: a, name: Ann, profiles: [Chat]}, {id: b, profiles: [Chat], presence: Away}]
`)
		route(t, e, "c1", nil)
		must(t)(e.Accept("a", "c1"))
		route(t, e, "c2", nil)
		must(t)(e.SetPresence("b", Available))
		ev := must(t)(e.SetPresence("a", Offline))
		require.Equal(t, []EventKind{EventPresence, EventMessage, EventOfferWithdrawn, EventOffered, EventPresence}, kinds(ev))
		require.Equal(t, []string{"c2→b"}, offered(ev))
		require.Contains(t, texts(ev), "Ann has been disconnected. Please stay in the chat.")
		s, who := stage(e, "c1")
		require.Equal(t, StageAssigned, s, "the conversation stays with the agent")
		require.Equal(t, "a", who)
	})
	t.Run("presence follows capacity", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}}]
queues: [{name: Q, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 2}]
agents: [{id: a, profiles: [Chat]}]
`)
		presenceOf := func() Presence { return e.Snapshot().Agents[0].Presence }
		route(t, e, "c1", nil)
		require.Equal(t, Busy, presenceOf(), "partly used")
		route(t, e, "c2", nil)
		require.Equal(t, BusyDND, presenceOf(), "used up")
		must(t)(e.Decline("a", "c2"))
		require.Equal(t, Busy, presenceOf())
		must(t)(e.End("c1"))
		require.Equal(t, Available, presenceOf(), "no work")
		must(t)(e.SetPresence("a", Away))
		route(t, e, "c3", nil)
		require.Equal(t, Away, presenceOf(), "a presence set by hand to Away stays")
		must(t)(e.SetPresence("a", BusyDND))
		must(t)(e.End("c2"))
		require.Equal(t, BusyDND, presenceOf(), "Busy-DND set by hand stays")
		ev := must(t)(e.SetPresence("a", Busy))
		require.Equal(t, []string{"c3→a"}, offered(ev), "Busy takes work up to capacity")
		require.Equal(t, Busy, presenceOf())
		_, err := e.SetPresence("a", Presence("Lunch"))
		require.ErrorIs(t, err, ErrInvalidPresence)
	})
}

func TestOffers(t *testing.T) {
	const cfg = `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}, offer_timeout: 90s, reoffer_after_decline: 2m}]
queues: [{name: Q, assignment: advanced_round_robin, agents: [a, b]}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, profiles: [Chat]}, {id: b, profiles: [Chat]}]
`
	t.Run("decline goes to the next agent, then back after the interval", func(t *testing.T) {
		e, clk := newEngine(t, cfg)
		require.Equal(t, "a", route(t, e, "c1", nil).Agent)
		ev := must(t)(e.Decline("a", "c1"))
		require.Equal(t, EventDeclined, ev[0].Kind)
		require.Equal(t, []string{"c1→b"}, offered(ev))
		ev = must(t)(e.Decline("b", "c1"))
		require.Empty(t, offered(ev), "both declined: it waits")
		clk.Advance(119 * time.Second)
		require.Empty(t, offered(e.Tick()))
		clk.Advance(time.Second)
		require.Equal(t, []string{"c1→a"}, offered(e.Tick()), "a declined first and was assigned longest ago")
		_, err := e.Decline("b", "c1")
		require.ErrorIs(t, err, ErrNoOffer)
		_, err = e.Accept("b", "c1")
		require.ErrorIs(t, err, ErrNoOffer)
	})
	t.Run("an offer not accepted in time expires", func(t *testing.T) {
		e, clk := newEngine(t, cfg)
		route(t, e, "c1", nil)
		clk.Advance(89 * time.Second)
		require.Empty(t, e.Tick())
		clk.Advance(time.Second)
		ev := e.Tick()
		require.Equal(t, EventOfferExpired, ev[0].Kind)
		require.Equal(t, "a", ev[0].Agent)
		require.Equal(t, []string{"c1→b"}, offered(ev))
	})
	t.Run("accept connects and says so; twice is harmless", func(t *testing.T) {
		e, _ := newEngine(t, cfg)
		route(t, e, "c1", nil)
		ev := must(t)(e.Accept("a", "c1"))
		require.Equal(t, []EventKind{EventAccepted, EventMessage}, kinds(ev), "presence became Busy at the offer")
		require.Equal(t, []string{"a has joined the conversation."}, texts(ev))
		require.Empty(t, must(t)(e.Accept("a", "c1")))
		_, err := e.Release("b", "c1")
		require.ErrorIs(t, err, ErrNotAssigned)
		ev = must(t)(e.Release("a", "c1"))
		require.Equal(t, []string{"a has ended the conversation."}, texts(ev))
		_, ok := e.Conversation("c1")
		require.False(t, ok)
	})
	t.Run("auto accept", func(t *testing.T) {
		e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}, auto_accept: true}]
queues: [{name: Q, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, name: Ann, profiles: [Chat]}]
`)
		d := route(t, e, "c1", nil)
		require.Equal(t, StageAssigned, d.Stage)
		require.Contains(t, texts(d.Events), "Ann has joined the conversation.")
	})
}
