package bridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// desk is a contact center for the Hub's tests: it records escalations and what it is sent.
type desk struct {
	recorder
	mu   sync.Mutex
	escs []*handoff.Escalation
	fail error
}

func (d *desk) Escalate(_ context.Context, c *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return bridge.Leg{}, "", d.fail
	}
	d.escs = append(d.escs, e)
	return bridge.Leg{Channel: "desk", ConversationID: "work-" + c.ID, Bot: activity.ChannelAccount{ID: "agent:alice", Name: "Alice"}}, bridge.StateQueued, nil
}

func (d *desk) escalations() []*handoff.Escalation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*handoff.Escalation(nil), d.escs...)
}

var _ bridge.Escalator = (*desk)(nil)

type escFixture struct {
	hub                *bridge.Hub
	customer, bot      *recorder
	desk               *desk
	conv               *bridge.Conversation
	customerLeg, agent bridge.Leg
}

func newEscFixture(t *testing.T, withDesk bool) *escFixture {
	cfg := bridge.HubConfig{DeliveryTimeout: time.Second}
	if withDesk {
		cfg.EscalationChannel = "desk"
	}
	f := &escFixture{hub: bridge.NewHub(memory.New(), cfg, zerolog.Nop()),
		customer: &recorder{name: "directline"}, bot: &recorder{name: "botframework"}, desk: &desk{recorder: recorder{name: "desk"}}}
	t.Cleanup(f.hub.Close)
	f.hub.Register(f.customer)
	f.hub.Register(f.bot)
	if withDesk {
		f.hub.Register(f.desk)
	}
	f.customerLeg = bridge.Leg{Channel: "directline", ConversationID: "c1", User: activity.ChannelAccount{ID: "u1", Name: "Ursula"}}
	var err error
	f.conv, _, err = f.hub.Start(context.Background(), "c1", f.customerLeg)
	require.NoError(t, err)
	f.agent = bridge.Leg{Channel: "desk", ConversationID: "work-c1"}
	return f
}

func (f *escFixture) say(t *testing.T, text string) {
	t.Helper()
	_, err := f.hub.Receive(context.Background(), f.customerLeg, &activity.Activity{Type: "message", Text: text, From: &activity.ChannelAccount{ID: "u1"}}, "")
	require.NoError(t, err)
}

func (f *escFixture) fromBot(t *testing.T, raw string) {
	t.Helper()
	a, err := activity.Decode([]byte(raw))
	require.NoError(t, err)
	_, err = f.hub.Receive(context.Background(), f.conv.Bot, a, "")
	require.NoError(t, err)
	f.settle(t)
}

// settle waits for the Hub's background deliveries (handoff statuses to the bot).
func (f *escFixture) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.hub.Wait(ctx))
}

func (f *escFixture) state(t *testing.T) bridge.State {
	t.Helper()
	c, err := f.hub.Conversation(context.Background(), "c1")
	require.NoError(t, err)
	return c.State
}

func texts(as []*activity.Activity) []string {
	var out []string
	for _, a := range as {
		switch {
		case a.Type == "message":
			out = append(out, a.Text)
		case a.Type == "event":
			out = append(out, a.Type+":"+a.Name)
		default:
			out = append(out, a.Type)
		}
	}
	return out
}

const handoffInitiate = `{"type":"event","name":"handoff.initiate","value":{"Skill":"credit cards","MessageToAgent":"wants a new card"},
 "attachments":[{"contentType":"application/json","name":"Transcript","content":{"activities":[{"type":"message","text":"from the bot's own transcript"}]}}]}`

func TestEscalationToAContactCenterAndBack(t *testing.T) {
	ctx := context.Background()
	f := newEscFixture(t, true)
	f.say(t, "hello")
	f.fromBot(t, `{"type":"message","text":"hi, how can I help?"}`)
	f.say(t, "I want a human")
	f.fromBot(t, handoffInitiate)

	require.Equal(t, bridge.StateQueued, f.state(t))
	escs := f.desk.escalations()
	require.Len(t, escs, 1)
	require.Equal(t, handoff.DialectBotFramework, escs[0].Source.Dialect)
	require.NotEmpty(t, escs[0].Transcript.Activities, "the transcript reaches the contact center")
	require.Equal(t, []string{"hi, how can I help?"}, texts(f.customer.sent()), "the handoff event is not shown to the customer")

	// queued: the customer's words go to the contact center, not to the bot
	botBefore := len(f.bot.sent())
	f.say(t, "are you there?")
	require.Len(t, f.bot.sent(), botBefore)
	require.Equal(t, []string{"are you there?"}, texts(f.desk.sent()))

	require.NoError(t, f.hub.Accept(ctx, "c1", f.agent))
	f.settle(t)
	require.Equal(t, bridge.StateAgent, f.state(t))
	status := f.bot.sent()[len(f.bot.sent())-1]
	require.Equal(t, "handoff.status", status.Name, "a Bot Framework bot hears that an agent accepted")
	require.JSONEq(t, `{"state":"accepted"}`, string(status.Value))

	_, err := f.hub.Receive(ctx, f.agent, &activity.Activity{Type: "message", Text: "Alice here"}, "")
	require.NoError(t, err)
	require.Equal(t, "Alice here", f.customer.sent()[len(f.customer.sent())-1].Text)

	// agent → bot transfer
	require.NoError(t, f.hub.ReturnToBot(ctx, "c1"))
	f.settle(t)
	require.Equal(t, bridge.StateBot, f.state(t))
	f.say(t, "back to the bot")
	require.Equal(t, "back to the bot", f.bot.sent()[len(f.bot.sent())-1].Text)
	require.JSONEq(t, `{"state":"completed","message":"returned to the bot"}`, string(f.bot.sent()[len(f.bot.sent())-2].Value))
}

func TestEscalationDialects(t *testing.T) {
	tests := []struct {
		name, raw string
		dialect   handoff.Dialect
		variable  string
	}{
		{"Bot Framework handoff.initiate", handoffInitiate, handoff.DialectBotFramework, ""},
		{"Health Bot tags", `{"type":"message","text":"Escalating...","channelData":{"tags":"{\"type\":\"Escalate\",\"context\":{\"EscalateToAgent\":1}}"}}`, handoff.DialectOmnichannel, "EscalateToAgent"},
		{"Copilot handoff.initiate", `{"type":"event","name":"handoff.initiate","value":{"va_LastTopic":"Store hours","va_AgentMessage":"Transferred","va_Language":"en-us"}}`, handoff.DialectCopilot, "va_LastTopic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newEscFixture(t, true)
			f.say(t, "help")
			f.fromBot(t, tc.raw)
			require.Equal(t, bridge.StateQueued, f.state(t))
			escs := f.desk.escalations()
			require.Len(t, escs, 1)
			require.Equal(t, tc.dialect, escs[0].Source.Dialect)
			if tc.variable != "" {
				require.Contains(t, escs[0].Context, tc.variable)
				c, err := f.hub.Conversation(context.Background(), "c1")
				require.NoError(t, err)
				require.Contains(t, c.Context, tc.variable, "context variables are kept on the conversation")
			}
			require.Empty(t, f.customer.sent(), "the command is not shown to the customer")
		})
	}
}

func TestEscalationFailures(t *testing.T) {
	t.Run("no contact center: the request passes through to the customer's side, like Direct Line", func(t *testing.T) {
		f := newEscFixture(t, false)
		f.say(t, "help")
		f.fromBot(t, handoffInitiate)
		require.Equal(t, bridge.StateBot, f.state(t))
		require.Equal(t, []string{"event:handoff.initiate"}, texts(f.customer.sent()), "a hub on the customer's side can act on it")
		for _, a := range f.bot.sent() {
			require.NotEqual(t, "handoff.status", a.Name, "the bridge did not handle it, so it says nothing")
		}
	})
	t.Run("the contact center refuses", func(t *testing.T) {
		f := newEscFixture(t, true)
		f.desk.fail = errors.New("no queue")
		f.say(t, "help")
		f.fromBot(t, handoffInitiate)
		require.Equal(t, bridge.StateBot, f.state(t))
		f.say(t, "still the bot?")
		require.Equal(t, "still the bot?", f.bot.sent()[len(f.bot.sent())-1].Text)
	})
	t.Run("a second escalation is ignored", func(t *testing.T) {
		f := newEscFixture(t, true)
		f.say(t, "help")
		f.fromBot(t, handoffInitiate)
		f.fromBot(t, handoffInitiate)
		require.Len(t, f.desk.escalations(), 1)
	})
}

func TestEnds(t *testing.T) {
	ctx := context.Background()
	t.Run("the bot ends", func(t *testing.T) {
		f := newEscFixture(t, true)
		f.say(t, "bye")
		f.fromBot(t, `{"type":"endOfConversation","code":"completedSuccessfully"}`)
		require.Equal(t, bridge.StateEnded, f.state(t))
		require.Equal(t, []string{"endOfConversation"}, texts(f.customer.sent()))
		_, err := f.hub.Receive(ctx, f.customerLeg, &activity.Activity{Type: "message", Text: "x"}, "")
		require.ErrorIs(t, err, bridge.ErrConversationEnded)
	})
	t.Run("an Omnichannel EndConversation command ends with an endOfConversation for the customer", func(t *testing.T) {
		f := newEscFixture(t, true)
		f.say(t, "bye")
		f.fromBot(t, `{"type":"message","text":"End of conversation","channelData":{"tags":"{\"type\":\"EndConversation\",\"context\":{}}"}}`)
		require.Equal(t, bridge.StateEnded, f.state(t))
		require.Equal(t, []string{"endOfConversation"}, texts(f.customer.sent()))
	})
	t.Run("the agent ends: customer and bot hear it", func(t *testing.T) {
		f := newEscFixture(t, true)
		f.say(t, "help")
		f.fromBot(t, handoffInitiate)
		require.NoError(t, f.hub.Accept(ctx, "c1", f.agent))
		require.NoError(t, f.hub.End(ctx, "c1", bridge.RoleAgent, handoff.End{Reason: handoff.EndAgent}))
		f.settle(t)
		require.Equal(t, bridge.StateEnded, f.state(t))
		require.Equal(t, "endOfConversation", f.customer.sent()[len(f.customer.sent())-1].Type)
		require.Equal(t, "endOfConversation", f.bot.sent()[len(f.bot.sent())-1].Type)
		require.NoError(t, f.hub.End(ctx, "c1", bridge.RoleAgent, handoff.End{}), "ending twice is harmless")
	})
	t.Run("the customer ends while with an agent", func(t *testing.T) {
		f := newEscFixture(t, true)
		f.say(t, "help")
		f.fromBot(t, handoffInitiate)
		require.NoError(t, f.hub.Accept(ctx, "c1", f.agent))
		require.NoError(t, f.hub.Wait(ctx)) // the bot has heard of the acceptance (in the background)
		_, err := f.hub.Receive(ctx, f.customerLeg, &activity.Activity{Type: "endOfConversation", From: &activity.ChannelAccount{ID: "u1"}}, "")
		require.NoError(t, err)
		require.Equal(t, bridge.StateEnded, f.state(t))
		require.Equal(t, "endOfConversation", f.desk.sent()[len(f.desk.sent())-1].Type)
		require.Equal(t, "endOfConversation", f.bot.sent()[len(f.bot.sent())-1].Type)
	})
	t.Run("wrong states are refused", func(t *testing.T) {
		f := newEscFixture(t, true)
		require.ErrorIs(t, f.hub.Accept(ctx, "c1", f.agent), bridge.ErrWrongState)
		require.ErrorIs(t, f.hub.ReturnToBot(ctx, "c1"), bridge.ErrWrongState)
	})
}

func TestCustomerVisible(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"type":"message","text":"hi"}`:                                        true,
		`{"type":"message","text":"hi","channelData":{"clientActivityID":"1"}}`: true,
		`{"type":"typing"}`:                                                     true,
		`{"type":"endOfConversation"}`:                                          true,
		`{"type":"conversationUpdate"}`:                                         false,
		`{"type":"event","name":"handoff.initiate","value":{}}`:                 false,
		`{"type":"event","name":"handoff.status","value":{"state":"accepted"}}`: false,
		`{"type":"message","text":"note","channelData":{"tags":"{\"type\":\"Escalate\",\"context\":{}}"}}`:       false,
		`{"type":"message","text":"bye","channelData":{"tags":"{\"type\":\"EndConversation\",\"context\":{}}"}}`: false,
		`{"type":"event","name":"something.else"}`:                                                               true,
	} {
		a, err := activity.Decode([]byte(raw))
		require.NoError(t, err)
		require.Equal(t, want, bridge.CustomerVisible(a), raw)
	}
}

// TestReturnToBotBeforeAnyAgent: a contact center that cannot route a queued conversation gives
// it back to the bot, which hears that the handoff failed (not that it completed).
func TestReturnToBotBeforeAnyAgent(t *testing.T) {
	ctx := context.Background()
	f := newEscFixture(t, true)
	f.say(t, "I want a human")
	f.fromBot(t, handoffInitiate)
	require.Equal(t, bridge.StateQueued, f.state(t))

	require.NoError(t, f.hub.ReturnToBot(ctx, "c1"))
	f.settle(t)
	require.Equal(t, bridge.StateBot, f.state(t))
	status := f.bot.sent()[len(f.bot.sent())-1]
	require.Equal(t, "handoff.status", status.Name)
	require.JSONEq(t, `{"state":"failed","message":"no human agent could take the conversation"}`, string(status.Value))
}
