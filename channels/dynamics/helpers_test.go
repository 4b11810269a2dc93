package dynamics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const waitFor = 15 * time.Second

// webCustomer is the customer's side as a channel that records what it is sent, in order.
type webCustomer struct {
	mu  sync.Mutex
	got []*activity.Activity
}

func (w *webCustomer) Name() string { return "web" }

func (w *webCustomer) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, a)
	return a.ID, nil
}

func (w *webCustomer) activities() []*activity.Activity {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// seen is what the customer saw: "type:text" for each activity (typing without text).
func (w *webCustomer) seen() []string {
	var out []string
	for _, a := range w.activities() {
		out = append(out, a.Type+":"+a.Text)
	}
	return out
}

// scriptBot is an in-process bot answering through the Hub within its turn:
//
//	"handoff"  Bot Framework handoff.initiate: Context {Skill, Priority, VIP, Topics}, MessageToAgent
//	"nurse"    Health Bot: 'Escalating...' with Omnichannel Escalate tags
//	"copilot"  Copilot Studio handoff.initiate with va_* variables
//	other      "echo: <text>"
type scriptBot struct{ hub *bridge.Hub }

func (b *scriptBot) Name() string { return "scriptbot" }

func (b *scriptBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if a.Type != activity.TypeMessage {
		return "", nil
	}
	bot := to.Bot
	r := botReply(a.Text)
	r.From, r.ReplyToID = &bot, a.ID
	_, err := b.hub.Receive(ctx, to, r, "")
	return "", err
}

func botReply(text string) *activity.Activity {
	switch text {
	case "handoff":
		return &activity.Activity{Type: activity.TypeEvent, Name: "handoff.initiate",
			Value: json.RawMessage(`{"Context":{"Skill":"billing","Priority":2,"VIP":true,"Score":4.5,"Topics":["refund","card"]},"MessageToAgent":"Customer asks about a refund"}`)}
	case "nurse":
		return &activity.Activity{Type: activity.TypeMessage, Text: "Escalating...",
			ChannelData: json.RawMessage(`{"tags":"{\"type\":\"Escalate\",\"context\":{\"EscalateToAgent\":1,\"BotHandoffTopic\":\"Nurse\"}}"}`)}
	case "copilot":
		return &activity.Activity{Type: activity.TypeEvent, Name: "handoff.initiate",
			Value: json.RawMessage(`{"va_Scope":"bot","va_LastTopic":"Refunds","va_LastPhrase":"talk to a person","va_AgentMessage":"Wants a human about refunds","va_BotId":"b1","va_Language":"en-us","OrderNumber":"A-42"}`)}
	}
	return &activity.Activity{Type: activity.TypeMessage, Text: "echo: " + text}
}

// rig is a Hub on the memory store with the web customer, the script bot and the channel, its
// webhook served on loopback, against the fake Messaging API.
type rig struct {
	t    testing.TB
	fake *FakeMessaging
	hub  *bridge.Hub
	ch   *Channel
	web  *webCustomer
	url  string
	logs *testutil.Buffer
}

func newRig(t testing.TB, mod func(*Config)) *rig {
	t.Helper()
	return newRigHub(t, mod, nil)
}

// newRigHub is newRig with changes to the Hub's configuration.
func newRigHub(t testing.TB, mod func(*Config), hubMod func(*bridge.HubConfig)) *rig {
	t.Helper()
	r := &rig{t: t, fake: NewFakeMessaging(t), web: &webCustomer{}, logs: &testutil.Buffer{}}
	log := zerolog.New(zerolog.MultiLevelWriter(r.logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel)
	hc := bridge.HubConfig{BotChannel: "scriptbot", EscalationChannel: Name, DeliveryTimeout: 10 * time.Second}
	if hubMod != nil {
		hubMod(&hc)
	}
	r.hub = bridge.NewHub(memory.New(), hc, log)
	t.Cleanup(r.hub.Close)
	r.hub.Register(&scriptBot{hub: r.hub})
	r.hub.Register(r.web)
	cfg := r.fake.Config()
	if mod != nil {
		mod(&cfg)
	}
	ch, err := New(cfg, r.hub, log)
	require.NoError(t, err)
	r.ch = ch
	r.hub.Register(ch)
	mux := http.NewServeMux()
	ch.Routes(mux)
	srv := httptest.NewServer(mux)
	r.url = srv.URL
	r.fake.Webhook = srv.URL + WebhookPrefix
	t.Cleanup(func() {
		srv.Close()
		ch.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.hub.Wait(ctx)
	})
	return r
}

// start opens a conversation for a customer.
func (r *rig) start(id string) bridge.Leg {
	r.t.Helper()
	leg := bridge.Leg{Channel: "web", ConversationID: id, User: activity.ChannelAccount{ID: "u-" + id, Name: "Dana Web", Role: activity.RoleUser},
		Bot: activity.ChannelAccount{ID: "bot", Name: "Bot", Role: activity.RoleBot}}
	_, _, err := r.hub.Start(context.Background(), id, leg)
	require.NoError(r.t, err)
	return leg
}

// say sends a customer message.
func (r *rig) say(leg bridge.Leg, text string) {
	r.t.Helper()
	u := leg.User
	_, err := r.hub.Receive(context.Background(), leg, &activity.Activity{Type: activity.TypeMessage, Text: text, From: &u}, "")
	require.NoError(r.t, err)
}

// escalate chats a little, then has the bot escalate with trigger, and returns the Dynamics id.
func (r *rig) escalate(leg bridge.Leg, trigger string) string {
	r.t.Helper()
	r.say(leg, "hello there")
	r.say(leg, trigger)
	require.Eventually(r.t, func() bool { return r.state(leg.ConversationID) == bridge.StateQueued }, waitFor, 10*time.Millisecond)
	id, err := r.ch.dynamicsID(context.Background(), leg.ConversationID)
	require.NoError(r.t, err)
	return id
}

func (r *rig) state(convID string) bridge.State {
	c, err := r.hub.Conversation(context.Background(), convID)
	require.NoError(r.t, err)
	return c.State
}

// waitMessages waits until the fake's conversation holds n customer messages.
func (r *rig) waitMessages(dynID string, n int) []string {
	r.t.Helper()
	require.Eventually(r.t, func() bool { return len(r.fake.MessageTexts(dynID)) >= n }, waitFor, 10*time.Millisecond,
		"dynamics got %d messages", n)
	return r.fake.MessageTexts(dynID)
}

// waitSeen waits until the customer saw an activity "type:text".
func (r *rig) waitSeen(want string) {
	r.t.Helper()
	require.Eventually(r.t, func() bool { return slices.Contains(r.web.seen(), want) }, waitFor, 10*time.Millisecond,
		"the customer sees %q", want)
}

// testConv is a conversation for the pure functions' tests.
var testConv = bridge.Conversation{ID: "conv-test", Version: 3}
