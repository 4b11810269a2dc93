package routing

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWaitingTimeOverflow(t *testing.T) {
	t.Run("transfer to another queue", func(t *testing.T) {
		e, clk := newEngine(t, `
workstreams: [{name: chat, fallback_queue: First, capacity: {profile: Chat}}]
queues:
  - {name: First, agents: [a], overflow: {waiting_time: {exceeds: 5m, action: transfer_to_queue, queue: Second}}}
  - {name: Second, agents: [b], overflow: {waiting_time: {exceeds: 1m, action: end_conversation}}}
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, profiles: [Chat], presence: Away}, {id: b, profiles: [Chat], presence: Away}]
`)
		route(t, e, "c1", nil)
		clk.Advance(5*time.Minute - time.Second)
		require.Empty(t, e.Tick())
		clk.Advance(time.Second)
		ev := e.Tick()
		require.Equal(t, EventTransferred, ev[0].Kind)
		require.Equal(t, "First", ev[0].FromQueue)
		require.Equal(t, "Second", ev[0].Queue)
		require.Equal(t, ReasonOverflowWaitingTime, ev[0].Reason)
		s, q := stage(e, "c1")
		require.Equal(t, StageWaiting, s)
		require.Equal(t, "Second", q)
		must(t)(e.SetPresence("b", Available))
		must(t)(e.Decline("b", "c1"))
		clk.Advance(time.Minute)
		ev = e.Tick()
		require.Equal(t, EventEnded, of(ev, EventEnded)[0].Kind, "the new queue's overflow applies too, counted from the transfer")
	})
	t.Run("end the conversation with a message", func(t *testing.T) {
		e, clk := newEngine(t, `
workstreams: [{name: chat, variables: {CustomerName: string}, fallback_queue: Q, capacity: {profile: Chat}}]
queues:
  - name: Q
    overflow: {waiting_time: {exceeds: 2m, action: end_conversation, message: "Sorry {$CustomerName$}, {QueueName} is closed."}}
  - name: Default
    overflow: {waiting_time: {exceeds: 1m, action: end_conversation}}
capacity_profiles: [{name: Chat, max_units: 1}]
`)
		route(t, e, "c1", map[string]Value{"CustomerName": String("Ada")})
		clk.Advance(2 * time.Minute)
		ev := e.Tick()
		require.Equal(t, []EventKind{EventMessage, EventEnded}, kinds(ev))
		require.Equal(t, "Sorry Ada, Q is closed.", ev[0].Text)
		require.Equal(t, TriggerOverflowEnd, ev[0].Trigger)
		require.Equal(t, ReasonOverflowWaitingTime, ev[1].Reason)
		_, ok := e.Conversation("c1")
		require.False(t, ok, "an ended conversation leaves the engine")

		d, err := e.TransferToQueue(route(t, e, "c2", nil).ConversationID, "Default")
		require.NoError(t, err)
		require.Equal(t, "Default", d.Queue)
		clk.Advance(time.Minute)
		ev = e.Tick()
		require.Equal(t, []string{DefaultMessages()[TriggerOverflowEnd]}, texts(ev), "the default overflow message")
	})
	t.Run("offers do not stop the clock", func(t *testing.T) {
		e, clk := newEngine(t, `
workstreams: [{name: chat, fallback_queue: Q, capacity: {profile: Chat}, offer_timeout: 90s}]
queues: [{name: Q, agents: [a], overflow: {waiting_time: {exceeds: 2m, action: end_conversation}}}]
capacity_profiles: [{name: Chat, max_units: 1}]
agents: [{id: a, profiles: [Chat]}]
`)
		route(t, e, "c1", nil)
		clk.Advance(90 * time.Second)
		require.Equal(t, EventOfferExpired, e.Tick()[0].Kind)
		clk.Advance(30 * time.Second)
		require.NotEmpty(t, of(e.Tick(), EventEnded), "declined and waited 2 minutes in all")
	})
}

const limitConfig = `
workstreams:
  - name: chat
    bot: bot
    variables: {Topic: string}
    rules:
      - {name: first, when: {var: Topic, op: exists}, queue: Full}
      - {name: second, when: {var: Topic, op: equals, value: Nurse}, queue: Spare}
    fallback_queue: Fallback
    capacity: {profile: Chat}
queues:
  - {name: Full, overflow: {work_item_limit: {limit: 1, %s}}}
  - {name: Spare, overflow: {work_item_limit: {limit: 1, action: transfer_to_queue, queue: Other}}}
  - {name: Other}
  - {name: Fallback, overflow: {work_item_limit: {limit: 1, action: end_conversation}}}
capacity_profiles: [{name: Chat, max_units: 1}]
bots: [{id: bot}]
`

func limitEngine(t *testing.T, action string) *Engine {
	e, _ := newEngine(t, strings.Replace(limitConfig, "%s", action, 1))
	return e
}

func TestWorkItemLimitOverflow(t *testing.T) {
	topic := func(s string) map[string]Value { return map[string]Value{"Topic": String(s)} }
	direct := func(t *testing.T, e *Engine, id string, ctx map[string]Value) Decision {
		d, err := e.Route(WorkItem{ConversationID: id, Context: ctx, ExcludeBots: []string{"bot"}})
		require.NoError(t, err)
		return d
	}
	t.Run("transfer", func(t *testing.T) {
		e := limitEngine(t, "action: transfer_to_queue, queue: Other")
		require.Equal(t, "Full", direct(t, e, "c1", topic("Billing")).Queue)
		d := direct(t, e, "c2", topic("Billing"))
		require.Equal(t, "Other", d.Queue)
		require.Equal(t, "first", d.Rule)
		tr := of(d.Events, EventTransferred)[0]
		require.Equal(t, "Full", tr.FromQueue)
		require.Equal(t, ReasonOverflowWorkItemLimit, tr.Reason)
	})
	t.Run("end", func(t *testing.T) {
		e := limitEngine(t, "action: end_conversation")
		direct(t, e, "c1", topic("Billing"))
		d := direct(t, e, "c2", topic("Billing"))
		require.True(t, d.Ended)
		require.Equal(t, "Full", d.Queue)
		require.Equal(t, []EventKind{EventMessage, EventEnded}, kinds(d.Events))
		require.Equal(t, TriggerOverflowEnd, d.Events[0].Trigger)
	})
	t.Run("assign anyway", func(t *testing.T) {
		e := limitEngine(t, "action: assign_anyway")
		direct(t, e, "c1", topic("Billing"))
		d := direct(t, e, "c2", topic("Billing"))
		require.Equal(t, "Full", d.Queue)
		require.Equal(t, 2, d.Position)
	})
	t.Run("the next matching rule's queue when the first overflows", func(t *testing.T) {
		e := limitEngine(t, "action: end_conversation")
		direct(t, e, "c1", topic("Billing"))
		d := direct(t, e, "c2", topic("Nurse"))
		require.Equal(t, "Spare", d.Queue)
		require.Equal(t, "second", d.Rule)
		d = direct(t, e, "c3", topic("Nurse"))
		require.True(t, d.Ended, "every matched queue overflows: the first one's action")
		require.Equal(t, "first", d.Rule)
	})
	t.Run("the fallback queue ignores overflow", func(t *testing.T) {
		e := limitEngine(t, "action: end_conversation")
		direct(t, e, "c1", nil)
		d := direct(t, e, "c2", nil)
		require.True(t, d.Fallback)
		require.Equal(t, 2, d.Position)
	})
	t.Run("checked after the first escalation only", func(t *testing.T) {
		e := limitEngine(t, "action: end_conversation")
		direct(t, e, "c0", topic("Billing"))
		require.Equal(t, "bot", route(t, e, "c1", nil).Bot)
		d, err := e.Escalate("c1", topic("Billing"))
		require.NoError(t, err)
		require.True(t, d.Ended, "first escalation: the limit applies")

		require.Equal(t, "bot", route(t, e, "c2", nil).Bot)
		must(t)(e.End("c0"))
		d, err = e.Escalate("c2", topic("Billing"))
		require.NoError(t, err)
		require.Equal(t, "Full", d.Queue)
		_, err = e.TransferToBot("c2", "bot")
		require.NoError(t, err)
		route(t, e, "c3", nil)
		d, err = e.Escalate("c3", topic("Billing"))
		require.NoError(t, err)
		require.Equal(t, "Full", d.Queue, "the limit is reached again")
		d, err = e.Escalate("c2", topic("Billing"))
		require.NoError(t, err)
		require.Equal(t, "Full", d.Queue, "second escalation: no pre-queue check")
		require.False(t, d.Ended)
		require.Equal(t, 1, d.Position, "it keeps its place from its first time in a queue")
	})
	t.Run("transfers skip the pre-queue check", func(t *testing.T) {
		e := limitEngine(t, "action: end_conversation")
		direct(t, e, "c1", topic("Billing"))
		direct(t, e, "c2", nil)
		d, err := e.TransferToQueue("c2", "Full")
		require.NoError(t, err)
		require.Equal(t, "Full", d.Queue)
		require.Equal(t, 2, d.Position)
	})
}
