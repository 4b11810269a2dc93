package routing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRender(t *testing.T) {
	s := slugs{agentName: "Ann", queueName: "Nurse", position: 3, averageWait: 90 * time.Second,
		ctx: map[string]Value{"CustomerName": String("Ada"), "Count": Integer(2)}}
	cases := map[string]string{
		"{AgentName} joined":                    "Ann joined",
		"Queue {QueueName}":                     "Queue Nurse",
		"#{QueuePosition}, {PeopleAhead} ahead": "#3, 2 ahead",
		"About {AverageWaitTime}":               "About 2 mins",
		"Hi {$CustomerName$} ({$Count$})":       "Hi Ada (2)",
		"Missing: [{$Nope$}]":                   "Missing: []",
		"Literal {Unknown} and {not a slug}":    "Literal {Unknown} and {not a slug}",
		"{$bad name$}":                          "{$bad name$}",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			require.Equal(t, want, render(in, s))
		})
	}
	require.Equal(t, "", checkTemplate("{AgentName} {$Any_Var1$} {not a slug}"))
	require.Equal(t, "{Agent}", checkTemplate("{Agent} is here"))
}

func TestFormatWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0 mins", 30 * time.Second: "1 min", time.Minute: "1 min", 3 * time.Minute: "3 mins",
		3*time.Minute + time.Second: "4 mins", time.Hour: "1 hr", 65 * time.Minute: "1 hr 5 mins",
		121 * time.Minute: "2 hrs 1 min", 180 * time.Minute: "3 hrs",
	} {
		require.Equal(t, want, formatWait(d), d.String())
	}
}

const messagesConfig = `
workstreams:
  - name: chat
    variables: {CustomerName: string}
    fallback_queue: Q
    capacity: {profile: Chat}
    show_queue_position: true
    show_average_wait_time: true
queues: [{name: Q, agents: [a]}, {name: Empty}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, name: Ann, profiles: [Chat]}]
average_wait_min_conversations: 2
messages:
  waiting_for_agent: "Hi {$CustomerName$}, please wait."
  agent_assigned: "{AgentName} will be with you."
`

func TestAutomatedMessages(t *testing.T) {
	e, clk := newEngine(t, messagesConfig)
	ada := map[string]Value{"CustomerName": String("Ada")}
	d := route(t, e, "c1", ada)
	require.Equal(t, []string{"Hi Ada, please wait.", "Ann will be with you."}, texts(d.Events),
		"offered at once: no position to tell")
	require.Equal(t, TriggerAgentAssigned, Messages(d.Events)[1].Trigger)
	clk.Advance(3 * time.Minute)
	ev := must(t)(e.Accept("a", "c1"))
	require.Equal(t, []string{"Ann has joined the conversation."}, texts(ev))

	d = route(t, e, "c2", nil)
	require.Equal(t, []string{"Hi , please wait.", "You're next in line."}, texts(d.Events),
		"one connected conversation is not enough for an average")
	d = route(t, e, "c3", nil)
	require.Equal(t, []string{"Hi , please wait.", "People ahead of you: 1."}, texts(d.Events))
	require.Equal(t, TriggerQueuePosition, Messages(d.Events)[1].Trigger)

	clk.Advance(5 * time.Minute)
	ev = must(t)(e.Release("a", "c1"))
	require.Equal(t, []string{"Ann has ended the conversation.", "Ann will be with you."}, texts(ev))
	must(t)(e.Accept("a", "c2")) // waited 5 minutes: average 3m + 0.2 × 2m = 3m24s

	ev = e.Tick()
	require.Equal(t, []string{"You're next in line."}, texts(ev), "c3 moved up")
	require.Empty(t, e.Tick(), "no change, no message")

	d = route(t, e, "c4", nil)
	require.Equal(t, []string{"Hi , please wait.", "People ahead of you: 1.", "Average wait time: 4 mins."}, texts(d.Events))
	require.Equal(t, 3*time.Minute+24*time.Second, e.Snapshot().Queues[0].AverageWait)

	d, err := e.TransferToQueue("c4", "Empty")
	require.NoError(t, err)
	require.Equal(t, []string{"Hi , please wait.", DefaultMessages()[TriggerAgentUnavailable], "You're next in line."}, texts(d.Events))

	clk.Advance(8 * 24 * time.Hour)
	d = route(t, e, "c5", nil)
	require.NotContains(t, texts(d.Events), "Average wait time: 4 mins.", "the average resets after seven quiet days")
}

func TestPositionUpdatesAreThrottled(t *testing.T) {
	e, clk := newEngine(t, messagesConfig)
	must(t)(e.SetPresence("a", Away))
	route(t, e, "c1", nil)
	route(t, e, "c2", nil)
	clk.Advance(10 * time.Second)
	must(t)(e.End("c1"))
	require.Empty(t, e.Tick(), "the last position message was 10 seconds ago")
	clk.Advance(20 * time.Second)
	ev := e.Tick()
	require.Equal(t, []string{"You're next in line."}, texts(ev))
	require.Equal(t, "c2", ev[0].ConversationID)
}

func TestMessagesCanBeTurnedOff(t *testing.T) {
	e, _ := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}, show_queue_position: true}]
queues: [{name: Q, agents: [a]}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, profiles: [Chat], presence: Away}]
messages: {waiting_for_agent: "", next_in_line: ""}
`)
	d := route(t, e, "c1", nil)
	require.Empty(t, texts(d.Events))
	require.Equal(t, 1, d.Position)
}
