package directline

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// downCenter is a contact center whose side fails every delivery, retryably.
type downCenter struct{ sends atomic.Int64 }

func (d *downCenter) Name() string { return "cc" }

func (d *downCenter) Send(_ context.Context, to bridge.Leg, _ *activity.Activity) (string, error) {
	d.sends.Add(1)
	return "", &bridge.DeliveryError{Leg: to.Key(), Status: http.StatusServiceUnavailable, Retryable: true, Err: errors.New("503")}
}

func (d *downCenter) Escalate(_ context.Context, c *bridge.Conversation, _ *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	return bridge.Leg{Channel: "cc", ConversationID: c.ID}, bridge.StateQueued, nil
}

// A customer's message to a contact center that fails its first delivery is answered 200: it is
// in the log and the outbox goes on delivering it; only the bot's failures are the POST's 502/504.
func TestContactCenterFailureIsNotTheCustomers(t *testing.T) {
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: 2 * time.Second, EscalationChannel: "cc"}, zerolog.Nop())
	t.Cleanup(hub.Close)
	bot, cc := &echoBot{hub: hub}, &downCenter{}
	hub.Register(bot)
	hub.Register(cc)
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	srv, err := New(Config{PublicURL: ts.URL, Secret: testSecret, KeepAlive: time.Hour}, hub, zerolog.Nop())
	require.NoError(t, err)
	hub.Register(srv)
	srv.Register(mux)
	f := &fixture{srv: srv, ts: ts, bot: bot, hub: hub, url: ts.URL + "/v3/directline"}
	c := f.start(t)

	ctx := context.Background()
	conv, err := hub.Conversation(ctx, c.ConversationID)
	require.NoError(t, err)
	_, err = hub.Receive(ctx, conv.Bot, &activity.Activity{Type: activity.TypeEvent, Name: handoff.EventHandoffInitiate, From: &conv.Bot.Bot}, "")
	require.NoError(t, err)
	conv, err = hub.Conversation(ctx, c.ConversationID)
	require.NoError(t, err)
	require.Equal(t, bridge.StateQueued, conv.State)

	var posted map[string]string
	resp := f.call(t, http.MethodPost, "/conversations/"+c.ConversationID+"/activities", c.Token,
		map[string]any{"type": "message", "from": map[string]string{"id": "u1"}, "text": "anyone there?"}, &posted)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, posted["id"])
	require.Positive(t, cc.sends.Load(), "the contact center was tried")

	bot.mu.Lock()
	bot.fail = http.StatusInternalServerError
	bot.mu.Unlock()
	other := f.start(t)
	resp = f.call(t, http.MethodPost, "/conversations/"+other.ConversationID+"/activities", other.Token,
		map[string]any{"type": "message", "from": map[string]string{"id": "u1"}, "text": "hello bot"}, nil)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode, "the bot's failure is still the POST's")
}
