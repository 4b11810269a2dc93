package desk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// sandbox is the embedded default in a test: the sandbox bot, the desk with routing cfg, and
// its pages and APIs on an httptest server.
func sandbox(t *testing.T, cfg *routing.Config) (*bridge.Hub, *customer, *Desk, string) {
	t.Helper()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: BotChannelName, EscalationChannel: ChannelName, DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	cust := &customer{}
	bot := NewBot(hub, DefaultScript(), zerolog.Nop())
	t.Cleanup(bot.Close)
	d, err := New(hub, fakeTokens{}, Config{Routing: cfg, TickInterval: 50 * time.Millisecond}, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(d.Close)
	hub.Register(cust)
	hub.Register(bot)
	hub.Register(d)
	mux := http.NewServeMux()
	d.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return hub, cust, d, ts.URL
}

func escalate(t *testing.T, hub *bridge.Hub, id string, user activity.ChannelAccount) bridge.Leg {
	t.Helper()
	leg := bridge.Leg{Channel: "directline", ConversationID: id, User: user}
	_, _, err := hub.Start(context.Background(), id, leg)
	require.NoError(t, err)
	_, err = hub.Receive(context.Background(), leg, &activity.Activity{Type: "message", Text: "I want to talk to a human", From: &user}, "")
	require.NoError(t, err)
	return leg
}

func supervisorOf(t *testing.T, base string) supView {
	t.Helper()
	resp, err := http.Get(base + "/sandbox/api/supervisor")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v supView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

// With only Alex's desk open, every customer is offered to Alex, none to Sam or Nina (who
// would otherwise be next in the round robin and hold the offer for two minutes); the
// supervisor sees each offer, to whom, and for how long; the desk shows names, not ids.
func TestOnlySignedInAgentGetsOffers(t *testing.T) {
	hub, _, _, base := sandbox(t, nil) // the sandbox's own routing: presence from desks
	before := supervisorOf(t, base)
	for _, a := range before.Agents {
		require.Equal(t, "Signed out", a.Status, a.ID)
	}
	alex := signIn(t, base, "alex")
	alex.until(func(m deskMsg) bool { return m.Type == "agent" && m.Agent.Presence == "Available" })

	users := []activity.ChannelAccount{{ID: "customer-455af83ab69d42da"}, {ID: "u2", Name: "Dana Park"}}
	for i, u := range users {
		escalate(t, hub, fmt.Sprint("c", i), u)
		require.Eventually(t, func() bool { return len(supervisorOf(t, base).Offers) == i+1 }, 5*time.Second, 10*time.Millisecond, "%+v", supervisorOf(t, base))
		offer := alex.until(func(m deskMsg) bool { return offered(m) && m.Conversation.ID == fmt.Sprint("c", i) })
		require.NotNil(t, offer.Conversation.AnswerBy, "the offer says until when it waits")
		require.WithinDuration(t, offer.Conversation.OfferedAt.Add(120*time.Second), *offer.Conversation.AnswerBy, time.Second)
		if i == 0 {
			require.Equal(t, visitorName("customer-455af83ab69d42da"), offer.Conversation.Customer, "a visitor without a name")
			require.Regexp(t, `^Visitor \d{4}$`, offer.Conversation.Customer)
		} else {
			require.Equal(t, "Dana Park", offer.Conversation.Customer)
		}
		for _, e := range offer.Conversation.Transcript {
			require.NotNil(t, e.At, "every line has its time")
		}
	}
	sup := supervisorOf(t, base)
	require.Len(t, sup.Offers, 2)
	for _, o := range sup.Offers {
		require.Equal(t, "Alex", o.Agent)
		require.Equal(t, "General", o.Queue)
		require.GreaterOrEqual(t, o.OfferedSeconds, 0.0)
		require.InDelta(t, 120-o.OfferedSeconds, o.ExpiresSeconds, 1)
		require.NotContains(t, o.Customer, "customer-")
	}
	status := map[string]string{}
	for _, a := range sup.Agents {
		status[a.ID] = a.Status
	}
	// Alex holds two offers of two: the capacity is used up, so Omnichannel says Do not disturb.
	require.Equal(t, map[string]string{"alex": "Do not disturb", "sam": "Signed out", "nina": "Signed out"}, status)
	for _, q := range sup.Queues {
		require.NotContains(t, q.Assignment, "_", "methods in words, not config names")
	}
}

// The agent's page closes and does not come back within the grace: the agent signs out, and
// the pending offer goes to the agent who is signed in.
func TestClosedDeskSignsOutAndOfferMoves(t *testing.T) {
	cfg := routing.DefaultConfig()
	cfg.DeskGrace = 2 * time.Second
	hub, _, d, base := sandbox(t, cfg)
	alex := signIn(t, base, "alex")
	alex.until(func(m deskMsg) bool { return m.Type == "agent" && m.Agent.Presence == "Available" })
	escalate(t, hub, "c1", activity.ChannelAccount{ID: "u1", Name: "Uma"})
	alex.until(offered)
	sam := signIn(t, base, "sam")
	require.NoError(t, alex.conn.Close())
	onDesk := func(agent string) bool {
		for _, a := range d.engine.Snapshot().Agents {
			if a.ID == agent {
				return a.Desk
			}
		}
		return false
	}
	// at once, not after the grace: no new offer goes to a desk nobody has open
	require.Eventually(t, func() bool { return !onDesk("alex") }, time.Second, 10*time.Millisecond, "the closed page counts at once")
	require.Equal(t, "Busy", d.agentView("alex").Presence, "within the grace Alex keeps presence and offer")
	offer := sam.until(offered)
	require.Equal(t, "c1", offer.Conversation.ID, "after the grace the offer moves to the agent signed in")
	require.Eventually(t, func() bool { return d.agentView("alex").Presence == "Offline" }, 5*time.Second, 10*time.Millisecond)
}

// Handing the conversation back to the bot tells the customer they talk to the bot again.
func TestTransferToBotTellsTheCustomer(t *testing.T) {
	hub, cust, _, base := sandbox(t, presenceOnly())
	for _, who := range []string{"sam", "nina"} {
		signIn(t, base, who).do(deskMsg{Type: "presence", Presence: "Offline"})
	}
	alex := signIn(t, base, "alex")
	escalate(t, hub, "c1", activity.ChannelAccount{ID: "u1", Name: "Uma"})
	alex.until(offered)
	alex.do(deskMsg{Type: "accept", ConversationID: "c1"})
	alex.until(active)
	alex.do(deskMsg{Type: "transfer", ConversationID: "c1", Kind: "bot", Target: "sandbox-bot"})
	require.Eventually(t, func() bool {
		for _, s := range cust.texts() {
			if s == "You're talking to the Sandbox bot again." {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "%v", cust.texts())
}

// The desk page's sign-in: the agents endpoint lists who may sign in; the index page names them.
func TestSignInListsTheAgents(t *testing.T) {
	_, _, _, base := sandbox(t, nil)
	resp, err := http.Get(base + "/sandbox/api/agents")
	require.NoError(t, err)
	var body struct{ Agents []struct{ ID, Name string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	var ids []string
	for _, a := range body.Agents {
		ids = append(ids, a.ID)
	}
	require.Equal(t, []string{"nina", "alex", "sam"}, ids)
	resp, err = http.Get(base + "/sandbox/")
	require.NoError(t, err)
	require.Contains(t, readAll(t, resp), "sign in as nina, alex or sam")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestVisitorName(t *testing.T) {
	require.Equal(t, visitorName("customer-455af83ab69d42da"), visitorName("customer-455af83ab69d42da"), "stable")
	require.NotEqual(t, visitorName("a"), visitorName("b"))
	for _, tc := range []struct {
		name, id string
		ok       bool
	}{{"Dana", "u1", true}, {"", "u1", false}, {"u1", "u1", false}, {"Customer", "u1", false}, {" user ", "u1", false}} {
		require.Equal(t, tc.ok, isName(tc.name, tc.id), tc.name)
	}
}

// The Health Bot way of escalating carries the note for the agent in the escalation message's
// text: the desk shows it as a note, not as a bot line, and the customer never gets it.
func TestNoteForTheAgentIsNotABotLine(t *testing.T) {
	hub, cust, _, base := sandbox(t, nil)
	nina := signIn(t, base, "nina")
	leg := bridge.Leg{Channel: "directline", ConversationID: "c1", User: activity.ChannelAccount{ID: "u1", Name: "Uma"}}
	_, _, err := hub.Start(context.Background(), "c1", leg)
	require.NoError(t, err)
	say(t, hub, leg, "I need a nurse")
	offer := nina.until(offered)
	var notes, bot []string
	for _, e := range offer.Conversation.Transcript {
		switch e.Role {
		case "note":
			notes = append(notes, e.Text)
		case "bot":
			bot = append(bot, e.Text)
		}
	}
	require.Equal(t, []string{"The customer asked for a nurse."}, notes)
	require.NotContains(t, bot, "The customer asked for a nurse.")
	require.NotContains(t, cust.texts(), "The customer asked for a nurse.", "the customer never saw the note")
}
