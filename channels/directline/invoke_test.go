package directline

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// invokeBot answers signin/tokenExchange as OAuthPrompt does (reference/signin.md §2c): 200 for
// the token "good", 412 for any other, and never for "silent"; its answer is recorded as the
// botframework channel records a Connector bot's (bridge.NewInvokeResponse).
type invokeBot struct{ hub *bridge.Hub }

func (b *invokeBot) Name() string { return "botframework" }

func (b *invokeBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if a.Type != activity.TypeInvoke {
		return "", nil
	}
	var v struct{ ID, Token string }
	_ = json.Unmarshal(a.Value, &v)
	status := http.StatusPreconditionFailed
	switch v.Token {
	case "good":
		status = http.StatusOK
	case "silent":
		return "", nil // delivered; the answer never comes
	}
	ir, err := bridge.NewInvokeResponse(a, to, status, []byte(`{"id":"`+v.ID+`"}`))
	if err == nil {
		_, err = b.hub.Receive(ctx, to, ir, bridge.InvokeResponseKey(a.ID))
	}
	return "", err
}

// A client's invoke POST answers with what the bot's invoke response says: 200 {id} for a 2xx;
// 502 BotRejectedActivity with the bot's status as httpStatusCode otherwise; 502 BotError when
// no answer comes within the bot timeout. Neither the sign-in invoke (it carries the token) nor
// the answer is in GET /activities (reference/signin.md §2c, §6.8).
func TestInvokePOST(t *testing.T) {
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: 500 * time.Millisecond}, zerolog.Nop())
	t.Cleanup(hub.Close)
	hub.Register(&invokeBot{hub: hub})
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	srv, err := New(Config{PublicURL: ts.URL, Secret: testSecret, KeepAlive: time.Hour}, hub, zerolog.Nop())
	require.NoError(t, err)
	hub.Register(srv)
	srv.Register(mux)
	f := &fixture{srv: srv, ts: ts, hub: hub, url: ts.URL + "/v3/directline"}
	c := f.start(t)

	post := func(token string, out any) *http.Response {
		return f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", c.Token, map[string]any{
			"type": "invoke", "name": "signin/tokenExchange", "from": map[string]any{"id": "u1"},
			"value": map[string]any{"id": "ter-1", "connectionName": "aad", "token": token},
		}, out)
	}
	var ok map[string]string
	require.Equal(t, http.StatusOK, post("good", &ok).StatusCode)
	require.True(t, strings.HasPrefix(ok["id"], c.ConversationID+"|"), ok["id"])

	var refused errBody
	require.Equal(t, http.StatusBadGateway, post("other-audience", &refused).StatusCode)
	require.Equal(t, CodeBotRejectedActivity, refused.Error.Code)
	require.Equal(t, http.StatusPreconditionFailed, refused.HTTPStatusCode)

	var silent errBody
	start := time.Now()
	require.Equal(t, http.StatusBadGateway, post("silent", &silent).StatusCode)
	require.Equal(t, CodeBotError, silent.Error.Code)
	require.Less(t, time.Since(start), 3*time.Second, "bounded by the bot timeout")

	var set struct{ Activities []map[string]any }
	require.Equal(t, http.StatusOK, f.call(t, "GET", "/conversations/"+c.ConversationID+"/activities", c.Token, nil, &set).StatusCode)
	require.Empty(t, set.Activities, "neither the invokes nor their answers are shown")
}
