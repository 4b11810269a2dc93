package routing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const escalationConfig = `
workstreams:
  - name: chat
    bot: triage
    variables: {BotHandoffTopic: string}
    rules:
      - {name: nurse, when: {var: BotHandoffTopic, op: equals, value: Nurse}, queue: Nurse}
      - {name: bots, when: {var: BotHandoffTopic, op: equals, value: Bots}, queue: Bots}
    fallback_queue: General
    capacity: {profile: Chat}
queues:
  - {name: Nurse, agents: [nina]}
  - {name: General, agents: [alex, nina]}
  - {name: Bots, bots: [triage, faq], agents: [alex]}
  - {name: TriageOnly, bots: [triage]}
capacity_profiles: [{name: Chat, max_units: 2}]
agents: [{id: nina, name: Nina, profiles: [Chat]}, {id: alex, name: Alex, profiles: [Chat]}]
bots: [{id: triage, name: Triage bot}, {id: faq}]
`

func TestEscalation(t *testing.T) {
	t.Run("the workstream bot first, then the rules with updated context", func(t *testing.T) {
		e, _ := newEngine(t, escalationConfig)
		d := route(t, e, "c1", map[string]Value{"BotHandoffTopic": String("Billing")})
		require.Equal(t, StageBot, d.Stage)
		require.Equal(t, "triage", d.Bot)
		require.Empty(t, d.Queue)
		require.Equal(t, []EventKind{EventBotAssigned}, kinds(d.Events))

		d, err := e.Escalate("c1", map[string]Value{"BotHandoffTopic": String("Nurse")})
		require.NoError(t, err)
		require.Equal(t, "Nurse", d.Queue, "the context variables were updated, then routing ran again")
		require.Equal(t, "nurse", d.Rule)
		require.Equal(t, "nina", d.Agent)
		require.Equal(t, StageOffered, d.Stage)
		require.Equal(t, EventEscalated, d.Events[0].Kind)
		require.Equal(t, "triage", d.Events[0].Bot)
		c, _ := e.Conversation("c1")
		require.Equal(t, []string{"triage"}, c.ExcludedBots)
		require.Equal(t, 1, c.Escalations)
		require.Equal(t, String("Nurse"), c.Context["BotHandoffTopic"])

		route(t, e, "c2", map[string]Value{"BotHandoffTopic": String("Nurse")})
		d, err = e.Escalate("c2", map[string]Value{"BotHandoffTopic": {}})
		require.NoError(t, err)
		require.True(t, d.Fallback, "a zero Value removes the variable")
	})
	t.Run("never back to the same bot", func(t *testing.T) {
		e, _ := newEngine(t, escalationConfig)
		route(t, e, "c1", nil)
		d, err := e.Escalate("c1", map[string]Value{"BotHandoffTopic": String("Bots")})
		require.NoError(t, err)
		require.Equal(t, StageBot, d.Stage, "bots in a queue have more capacity than any agent")
		require.Equal(t, "faq", d.Bot, "the escalating bot is skipped")
		d, err = e.Escalate("c1", nil)
		require.NoError(t, err)
		require.Equal(t, "Bots", d.Queue)
		require.Equal(t, "alex", d.Agent, "both bots escalated it: a person gets it")
		c, _ := e.Conversation("c1")
		require.Equal(t, []string{"triage", "faq"}, c.ExcludedBots)
	})
	t.Run("a queue staffed only by that bot keeps the conversation waiting", func(t *testing.T) {
		e, _ := newEngine(t, escalationConfig)
		route(t, e, "c1", nil)
		_, err := e.Escalate("c1", nil)
		require.NoError(t, err)
		must(t)(e.Accept("alex", "c1"))
		d, err := e.TransferToQueue("c1", "TriageOnly")
		require.NoError(t, err)
		require.Equal(t, StageWaiting, d.Stage)
		require.Contains(t, texts(d.Events), DefaultMessages()[TriggerAgentUnavailable])
	})
	t.Run("excluded bots skip the workstream bot", func(t *testing.T) {
		e, _ := newEngine(t, escalationConfig)
		d, err := e.Route(WorkItem{ConversationID: "c1", ExcludeBots: []string{"triage", "triage", "outside"}})
		require.NoError(t, err)
		require.Equal(t, "General", d.Queue)
		require.Equal(t, "alex", d.Agent)
	})
	t.Run("only from a bot", func(t *testing.T) {
		e, _ := newEngine(t, escalationConfig)
		_, err := e.Escalate("nope", nil)
		require.ErrorIs(t, err, ErrUnknownConversation)
		route(t, e, "c1", nil)
		_, err = e.Escalate("c1", nil)
		require.NoError(t, err)
		_, err = e.Escalate("c1", nil)
		require.ErrorIs(t, err, ErrNotWithBot)
	})
}

func TestTransferToQueue(t *testing.T) {
	e, clk := newEngine(t, escalationConfig)
	d, err := e.Route(WorkItem{ConversationID: "early", ExcludeBots: []string{"triage"}, Context: map[string]Value{"BotHandoffTopic": String("Nurse")}})
	require.NoError(t, err)
	require.Equal(t, "nina", d.Agent)
	must(t)(e.Accept("nina", "early"))
	must(t)(e.SetPresence("alex", Away))
	clk.Advance(time.Minute)
	d, err = e.Route(WorkItem{ConversationID: "later", ExcludeBots: []string{"triage"}})
	require.NoError(t, err)
	require.Equal(t, "nina", d.Agent)
	must(t)(e.Decline("nina", "later"))

	clk.Advance(time.Minute)
	d, err = e.TransferToQueue("early", "General")
	require.NoError(t, err)
	require.Equal(t, []EventKind{EventReleased, EventPresence, EventTransferred, EventQueued, EventMessage}, kinds(d.Events)[:5])
	require.Equal(t, ReasonTransfer, d.Events[0].Reason)
	require.Equal(t, Available, d.Events[1].Presence, "nina has no work left")
	require.Equal(t, "Nurse", d.Events[2].FromQueue)
	require.Equal(t, "nina", d.Events[2].Agent)
	require.Equal(t, StageWaiting, d.Stage, "nina transferred it and declined the other: nobody can take it")
	require.Equal(t, 1, d.Position, "it arrived before the one already waiting")

	ev := must(t)(e.SetPresence("alex", Available))
	require.Equal(t, []string{"early→alex", "later→alex"}, offered(ev))
	ev = must(t)(e.Accept("alex", "early"))
	require.Equal(t, []string{"You're now chatting with Alex."}, texts(ev), "Transfer to agent accepted")
	require.Equal(t, TriggerTransferAccepted, Messages(ev)[0].Trigger)

	c, _ := e.Conversation("early")
	require.Equal(t, 1, c.Transfers)
	require.Equal(t, "nina", c.TransferredFrom)
	snap := e.Snapshot()
	require.Equal(t, 0, snap.Agents[0].Profiles[0].Used, "nina's capacity was released")

	_, err = e.TransferToQueue("early", "Nowhere")
	require.ErrorIs(t, err, ErrUnknownQueue)
	_, err = e.TransferToQueue("later", "Nurse")
	require.ErrorIs(t, err, ErrInvalidStage, "an offered conversation is the agent's to accept or decline")
	_, err = e.TransferToQueue("ghost", "Nurse")
	require.ErrorIs(t, err, ErrUnknownConversation)
}

func TestTransferToBot(t *testing.T) {
	e, _ := newEngine(t, escalationConfig)
	route(t, e, "c1", nil)
	_, err := e.Escalate("c1", nil)
	require.NoError(t, err)
	must(t)(e.Accept("alex", "c1"))

	d, err := e.TransferToBot("c1", "triage")
	require.NoError(t, err)
	require.Equal(t, StageBot, d.Stage)
	require.Equal(t, "triage", d.Bot, "the agent chose the bot that escalated it")
	require.Equal(t, []EventKind{EventReleased, EventPresence, EventBotAssigned}, kinds(d.Events))
	require.Equal(t, "alex", d.Events[2].Agent)
	require.Equal(t, ReasonTransfer, d.Events[2].Reason)
	require.Equal(t, 0, e.Snapshot().Agents[1].Profiles[0].Used)

	d, err = e.Escalate("c1", map[string]Value{"BotHandoffTopic": String("Bots")})
	require.NoError(t, err)
	require.Equal(t, "faq", d.Bot, "escalated again: triage is excluded again")

	_, err = e.TransferToBot("c1", "robot")
	require.ErrorIs(t, err, ErrUnknownBot)
	_, err = e.TransferToBot("c1", "triage")
	require.ErrorIs(t, err, ErrInvalidStage, "a bot already holds it")
	_, err = e.TransferToQueue("c1", "General")
	require.ErrorIs(t, err, ErrInvalidStage, "a bot hands over by escalating")

	route(t, e, "c2", nil)
	_, err = e.Escalate("c2", map[string]Value{"BotHandoffTopic": String("Nurse")})
	require.NoError(t, err)
	must(t)(e.SetPresence("nina", Offline))
	d, err = e.TransferToBot("c2", "faq")
	require.NoError(t, err, "a waiting conversation can go to a bot too")
	require.Equal(t, "faq", d.Bot)
}
