package desk

import (
	"context"
	"strings"
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

// customer records what the Hub relays to the customer's leg.
type customer struct {
	mu  sync.Mutex
	got []*activity.Activity
}

func (c *customer) Name() string { return "directline" }
func (c *customer) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, a)
	return a.ID, nil
}
func (c *customer) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.got {
		if a.Type == activity.TypeMessage {
			out = append(out, a.Text)
		} else {
			out = append(out, a.Type)
		}
	}
	return out
}

// fakeDesk takes escalations for these tests.
type fakeDesk struct {
	customer
	escs []*handoff.Escalation
}

func (d *fakeDesk) Name() string { return "desk" }
func (d *fakeDesk) Escalate(_ context.Context, c *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.escs = append(d.escs, e)
	return bridge.Leg{Channel: "desk", ConversationID: c.ID}, bridge.StateQueued, nil
}

func botFixture(t *testing.T, script *Script) (*bridge.Hub, *customer, *fakeDesk, bridge.Leg) {
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: BotChannelName, EscalationChannel: "desk", DeliveryTimeout: time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	cust, d := &customer{}, &fakeDesk{}
	bot := NewBot(hub, script, zerolog.Nop())
	t.Cleanup(bot.Close)
	hub.Register(cust)
	hub.Register(d)
	hub.Register(bot)
	leg := bridge.Leg{Channel: "directline", ConversationID: "c1", User: activity.ChannelAccount{ID: "u1"}}
	_, _, err := hub.Start(context.Background(), "c1", leg)
	require.NoError(t, err)
	return hub, cust, d, leg
}

func say(t *testing.T, hub *bridge.Hub, leg bridge.Leg, text string) {
	t.Helper()
	_, err := hub.Receive(context.Background(), leg, &activity.Activity{Type: "message", Text: text, From: &activity.ChannelAccount{ID: "u1"}}, "")
	require.NoError(t, err)
}

func TestDefaultScript(t *testing.T) {
	s := DefaultScript()
	require.NotEmpty(t, s.Greeting)
	tests := []struct {
		text, dialect, topic string
		end                  bool
	}{
		{"I need a nurse please", "healthbot", "Nurse", false},
		{"I want to talk to a human", "botframework", "General", false},
		{"bye", "", "", true},
		{"what are your hours?", "", "", false},
	}
	for _, tc := range tests {
		r := s.match(tc.text)
		require.NotNil(t, r, tc.text)
		if tc.dialect == "" {
			require.Nil(t, r.Escalate, tc.text)
		} else {
			require.Equal(t, tc.dialect, r.Escalate.Dialect)
			require.True(t, handoff.String(tc.topic).Equal(r.Escalate.vars["BotHandoffTopic"]))
		}
		require.Equal(t, tc.end, r.End)
	}
}

func TestBotEscalatesLikeRealBots(t *testing.T) {
	for _, tc := range []struct {
		text    string
		dialect handoff.Dialect
		topic   string
	}{
		{"nurse", handoff.DialectOmnichannel, "Nurse"}, // Health Bot's tags are the Omnichannel command on the wire
		{"talk to a human", handoff.DialectBotFramework, "General"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			hub, cust, d, leg := botFixture(t, DefaultScript())
			say(t, hub, leg, tc.text)
			require.Len(t, d.escs, 1)
			require.Equal(t, tc.dialect, d.escs[0].Source.Dialect)
			require.True(t, handoff.String(tc.topic).Equal(d.escs[0].Context["BotHandoffTopic"]))
			require.NotEmpty(t, d.escs[0].AgentNote)
			c, err := hub.Conversation(context.Background(), "c1")
			require.NoError(t, err)
			require.Equal(t, bridge.StateQueued, c.State)
			texts := cust.texts()
			require.Equal(t, DefaultScript().Greeting, texts[0])
			require.Len(t, texts, 2, "greeting and the visible reply; the escalation itself is not shown")
		})
	}
}

func TestBotRepliesAndEnds(t *testing.T) {
	hub, cust, _, leg := botFixture(t, DefaultScript())
	say(t, hub, leg, "opening hours?")
	say(t, hub, leg, "bye")
	texts := cust.texts()
	require.Contains(t, texts[1], `You said: "opening hours?"`)
	require.Equal(t, []string{"Goodbye! Thanks for chatting.", "endOfConversation"}, texts[2:])
	c, err := hub.Conversation(context.Background(), "c1")
	require.NoError(t, err)
	require.Equal(t, bridge.StateEnded, c.State)
}

func TestBotInactivity(t *testing.T) {
	s, err := ParseScript("test.yaml", []byte("rules:\n  - match: '.'\n    reply: ok\ninactivity:\n  remind_after: 50ms\n  end_after: 200ms\n"))
	require.NoError(t, err)
	hub, cust, _, leg := botFixture(t, s)
	say(t, hub, leg, "hello")
	require.Eventually(t, func() bool {
		texts := cust.texts()
		return len(texts) > 0 && texts[len(texts)-1] == "endOfConversation"
	}, 5*time.Second, 10*time.Millisecond, "the bot ends the silent conversation")
	require.Equal(t, []string{"ok", "Are you still there?", "I'm closing this conversation since it's been quiet.", "endOfConversation"}, cust.texts())
	c, err := hub.Conversation(context.Background(), "c1")
	require.NoError(t, err)
	require.Equal(t, bridge.StateEnded, c.State)
}

func TestScriptErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"malformed", "rules: [\n", "bad.yaml: line"},
		{"unknown key", "rules:\n  - match: x\n    reply: y\n    frobnicate: 1\n", "line 4"},
		{"bad pattern", "rules:\n  - match: ok\n    reply: y\n  - match: '(unclosed'\n    reply: y\n", "bad.yaml: line 4: rule 2: match \"(unclosed\" is not a valid regular expression"},
		{"rule without action", "rules:\n  - match: x\n", "bad.yaml: line 2: rule 1 does nothing"},
		{"no match", "rules:\n  - reply: x\n", "bad.yaml: line 2: rule 1 has no match pattern"},
		{"bad dialect", "rules:\n  - match: x\n    escalate:\n      dialect: fax\n", "bad.yaml: line 2: rule 1: escalate dialect \"fax\""},
		{"bad context value", "rules:\n  - match: x\n    escalate:\n      context:\n        A: [1, 2]\n", "context variable \"A\" must be a string, number or boolean"},
		{"inactivity order", "rules:\n  - match: x\n    reply: y\ninactivity:\n  remind_after: 5m\n  end_after: 1m\n", "remind_after (5m0s) must come before end_after (1m0s)"},
		{"no rules", "greeting: hi\n", "the script has no rules"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScript("bad.yaml", []byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// The echo of a message near the 256K-character limit, with the script's prefix, stays within
// the limit: the customer's words are cut short, ending in "…".
func TestBotEchoStaysWithinTheActivityLimit(t *testing.T) {
	for name, unit := range map[string]string{"plain": "x", "escaped": `"<`, "wide": "é"} {
		t.Run(name, func(t *testing.T) {
			hub, cust, _, leg := botFixture(t, DefaultScript())
			text := strings.Repeat(unit, (activity.MaxActivityChars-200)/len([]rune(unit)))
			say(t, hub, leg, text)
			var echo *activity.Activity
			// Receive waits for the bot's answer only up to the delivery timeout (1 s); a
			// quarter-megabyte activity under the race detector on a busy machine can take longer.
			require.Eventually(t, func() bool {
				cust.mu.Lock()
				defer cust.mu.Unlock()
				for _, a := range cust.got {
					if a.Type == activity.TypeMessage && strings.HasPrefix(a.Text, "You said") {
						echo = a
					}
				}
				return echo != nil
			}, 20*time.Second, 20*time.Millisecond, "the bot echoes")
			raw, err := activity.Marshal(echo)
			require.NoError(t, err)
			require.True(t, activity.CheckSize(raw) == nil, "the echo is within the limit: %d characters", len([]rune(string(raw))))
			require.True(t, strings.HasPrefix(echo.Text, `You said: "`+unit), "the echo starts with the customer's words")
			require.True(t, strings.Contains(echo.Text, "…\". I'm a simple sandbox bot"), "the customer's words are cut short")
		})
	}
	require.Equal(t, `You said: "hi".`, fitReply(`You said: "{{text}}".`, "hi", 100), "short messages are echoed whole")
	require.Equal(t, `abcd…`, fitReply(`{{text}}`, "abcdef", 7), "7 characters as JSON: the quotes and abcd…")
}

// Delivery is at least once: an activity delivered to the bot again (an instance died before
// acknowledging it) under the same id is not answered twice.
func TestBotAnswersARedeliveryOnce(t *testing.T) {
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: BotChannelName, DeliveryTimeout: time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	cust, bot := &customer{}, NewBot(hub, DefaultScript(), zerolog.Nop())
	t.Cleanup(bot.Close)
	hub.Register(cust)
	hub.Register(bot)
	leg := bridge.Leg{Channel: "directline", ConversationID: "c1", User: activity.ChannelAccount{ID: "u1"}}
	_, _, err := hub.Start(context.Background(), "c1", leg)
	require.NoError(t, err)
	say(t, hub, leg, "opening hours?")
	c, err := hub.Conversation(context.Background(), "c1")
	require.NoError(t, err)
	recs, err := hub.Since(context.Background(), "c1", -1, 0)
	require.NoError(t, err)
	var asked *activity.Activity
	for _, r := range recs {
		if r.From == bridge.RoleCustomer {
			asked = r.Activity
		}
	}
	require.NotNil(t, asked)
	before := len(cust.texts())
	_, err = bot.Send(context.Background(), c.Bot, asked) // the same activity, again
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	require.Len(t, cust.texts(), before, "no second reply")
	after, err := hub.Since(context.Background(), "c1", -1, 0)
	require.NoError(t, err)
	require.Len(t, after, len(recs))
}
