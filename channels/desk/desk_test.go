package desk

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

type fakeTokens struct{}

func (fakeTokens) IssueToken(user string) (string, string, int, error) {
	return "conv-for-" + user, "token", 1800, nil
}

// agentClient is a desk page, as far as the protocol goes.
type agentClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func signIn(t *testing.T, base, agent string) *agentClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/sandbox/api/desk?agent="+agent, nil)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	a := &agentClient{t: t, conn: conn}
	a.until(func(m deskMsg) bool { return m.Type == "state" })
	return a
}

func (a *agentClient) do(m deskMsg) {
	a.t.Helper()
	require.NoError(a.t, a.conn.WriteJSON(m))
}

// until reads messages until one satisfies pred, and returns it.
func (a *agentClient) until(pred func(deskMsg) bool) deskMsg {
	a.t.Helper()
	for {
		require.NoError(a.t, a.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		var m deskMsg
		require.NoError(a.t, a.conn.ReadJSON(&m))
		require.NotEqual(a.t, "error", m.Type, m.Message)
		if pred(m) {
			return m
		}
	}
}

// presenceOnly is the sandbox's routing without presence from desk pages: agents get work by
// their configured presence, for tests about something else than sign-in.
func presenceOnly() *routing.Config {
	cfg := routing.DefaultConfig()
	cfg.DeskGrace = 0
	return cfg
}

func offered(m deskMsg) bool { return m.Type == "conversation" && m.Conversation.State == "offered" }
func active(m deskMsg) bool  { return m.Type == "conversation" && m.Conversation.State == "active" }

func TestDeskTransfersAndSupervisor(t *testing.T) {
	ctx := context.Background()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: BotChannelName, EscalationChannel: ChannelName, DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	cust := &customer{}
	bot := NewBot(hub, DefaultScript(), zerolog.Nop())
	t.Cleanup(bot.Close)
	d, err := New(hub, fakeTokens{}, Config{TickInterval: 50 * time.Millisecond}, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(d.Close)
	hub.Register(cust)
	hub.Register(bot)
	hub.Register(d)
	mux := http.NewServeMux()
	d.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	for _, who := range []string{"sam", "nina"} {
		signIn(t, ts.URL, who).do(deskMsg{Type: "presence", Presence: "Offline"})
	}
	require.Eventually(t, func() bool {
		v := d.agentView("nina")
		return v.Presence == "Offline" && d.agentView("sam").Presence == "Offline"
	}, 5*time.Second, 10*time.Millisecond, "sam and nina offline")
	alex := signIn(t, ts.URL, "alex")

	leg := bridge.Leg{Channel: "directline", ConversationID: "c1", User: activity.ChannelAccount{ID: "u1", Name: "Uma"}}
	_, _, err = hub.Start(ctx, "c1", leg)
	require.NoError(t, err)
	say(t, hub, leg, "I want to talk to a human")

	offer := alex.until(offered)
	require.Equal(t, "General", offer.Conversation.Queue)
	require.Equal(t, "Uma", offer.Conversation.Customer)
	require.Equal(t, "The customer asked for a human.", offer.Conversation.Note)
	require.Equal(t, map[string]any{"BotHandoffTopic": "General"}, offer.Conversation.Context)
	alex.do(deskMsg{Type: "accept", ConversationID: "c1"})
	alex.until(active)
	state := func() bridge.State {
		c, err := hub.Conversation(ctx, "c1")
		require.NoError(t, err)
		return c.State
	}
	require.Eventually(t, func() bool { return state() == bridge.StateAgent }, 5*time.Second, 10*time.Millisecond, "the hub knows the agent accepted")

	// agent → queue: Nurse has only Nina, who is offline: it waits, and the supervisor sees it.
	alex.do(deskMsg{Type: "transfer", ConversationID: "c1", Kind: "queue", Target: "Nurse"})
	alex.until(func(m deskMsg) bool { return m.Type == "removed" && m.ConversationID == "c1" })
	require.Eventually(t, func() bool { return state() == bridge.StateQueued }, 5*time.Second, 10*time.Millisecond, "requeued")
	resp, err := http.Get(ts.URL + "/sandbox/api/supervisor")
	require.NoError(t, err)
	var sup struct {
		Queues []struct {
			Name    string
			Waiting int
		}
		Agents []struct {
			ID, Presence string
			Load         int
			Capacity     int
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sup))
	resp.Body.Close()
	waiting := map[string]int{}
	for _, q := range sup.Queues {
		waiting[q.Name] = q.Waiting
	}
	require.Equal(t, 1, waiting["Nurse"], "the supervisor sees the conversation waiting in Nurse")
	for _, a := range sup.Agents {
		require.Positive(t, a.Capacity, "agent %s has a capacity", a.ID)
	}

	// Nina comes back: she gets it, with the whole transcript.
	nina := signIn(t, ts.URL, "nina")
	nina.do(deskMsg{Type: "presence", Presence: "Available"})
	offer = nina.until(offered)
	require.Equal(t, "Nurse", offer.Conversation.Queue)
	nina.do(deskMsg{Type: "accept", ConversationID: "c1"})
	got := nina.until(active)
	var lines []string
	for _, e := range got.Conversation.Transcript {
		lines = append(lines, e.Role+": "+e.Text)
	}
	require.Contains(t, lines, "customer: I want to talk to a human")
	require.Contains(t, lines, "bot: I'll find a human to help you. One moment.")

	// agent → bot: the bot has the conversation again and answers the customer.
	nina.do(deskMsg{Type: "transfer", ConversationID: "c1", Kind: "bot", Target: "sandbox-bot"})
	require.Eventually(t, func() bool { return state() == bridge.StateBot }, 5*time.Second, 10*time.Millisecond, "back with the bot")
	say(t, hub, leg, "what are your hours?")
	texts := cust.texts()
	require.Contains(t, texts[len(texts)-1], `You said: "what are your hours?"`)

	// someone who is not an agent cannot sign in
	r, err := http.Get(ts.URL + "/sandbox/api/desk?agent=mallory")
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusNotFound, r.StatusCode)
}
