package dlclient

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
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/localbot"
)

// ssoBot is the bot behind bridge B for the invoke tests: localbot's echo, and signin/tokenExchange
// answered as botbuilder's OAuthPrompt answers it (reference/signin.md §2c): 200 with the id echoed
// for the one token its token service exchanges, 412 "unable to exchange token" for any other.
// Its answer is recorded as a Connector bot's is (bridge.NewInvokeResponse), so that bridge B's
// Direct Line answers the POST from it: 200, or 502 with the bot's status as httpStatusCode.
type ssoBot struct {
	*localbot.Bot
	hub bridge.Receiver
}

const exchangeableToken = "sso-token-for-the-bot"

func (b *ssoBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if a.Type != activity.TypeInvoke {
		return b.Bot.Send(ctx, to, a)
	}
	var v struct{ ID, ConnectionName, Token string }
	_ = json.Unmarshal(a.Value, &v)
	status, body := http.StatusOK, map[string]string{"id": v.ID, "connectionName": v.ConnectionName}
	if a.Name != "signin/tokenExchange" || v.Token != exchangeableToken {
		status, body["failureDetail"] = http.StatusPreconditionFailed, "The bot is unable to exchange token. Proceed with regular login."
	}
	raw, _ := json.Marshal(body)
	ir, err := bridge.NewInvokeResponse(a, to, status, raw)
	if err != nil {
		return "", err
	}
	_, err = b.hub.Receive(ctx, to, ir, bridge.InvokeResponseKey(a.ID))
	return "", err
}

// newSSOBridgeB is bridge B (our Direct Line server) with the ssoBot behind it.
func newSSOBridgeB(t *testing.T) *bridgeB {
	t.Helper()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: localbot.ChannelName, DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	hub.Register(&ssoBot{Bot: localbot.New(hub, welcome), hub: hub})
	mux := http.NewServeMux()
	b := &bridgeB{hub: hub, mux: mux, rec: &recorder{}}
	b.ts = httptest.NewServer(record(b.rec, nil, mux))
	t.Cleanup(b.ts.Close)
	srv, err := directline.New(directline.Config{PublicURL: b.ts.URL, Secret: secretB, KeepAlive: 500 * time.Millisecond}, hub, zerolog.Nop())
	require.NoError(t, err)
	hub.Register(srv)
	srv.Register(mux)
	b.srv, b.domain = srv, b.ts.URL+"/v3/directline"
	return b
}

// T1 pass-through of sign-in (reference/signin.md §7) with a hosted bot over Direct Line: the
// customer's signin/tokenExchange goes upstream as an invoke, unchanged, from the customer's
// stable upstream user; the upstream POST's answer becomes the bot's invoke response in bridge
// A's log — 200, or the bot's 412 that Direct Line reports as 502 with httpStatusCode — and the
// invoke response never reaches the customer. The bot's OAuthCard comes back with every field.
func TestInvokeUpstream(t *testing.T) {
	b := newSSOBridgeB(t)
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, testLog(t))
	a.start(t, "conv-1")
	converse(t, a, b, "conv-1", "hello")
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	invoke := func(token string) (string, bridge.InvokeResponse, error) {
		return a.hub.Invoke(ctx, custLeg("conv-1"), &activity.Activity{
			Type: activity.TypeInvoke, Name: "signin/tokenExchange", From: &activity.ChannelAccount{ID: "u1", Name: "Ursula"},
			Value: json.RawMessage(`{"id":"ter-1","connectionName":"aad","token":"` + token + `"}`),
		}, "")
	}
	_, ok, err := invoke(exchangeableToken)
	require.NoError(t, err)
	require.Equal(t, 200, ok.Status, "upstream 200: the bot accepted")
	_, refused, err := invoke("a-token-for-another-audience")
	require.NoError(t, err)
	require.Equal(t, 412, refused.Status, "upstream 502 with the bot's httpStatusCode 412")

	up := a.upstream(t, "conv-1")
	var invokes []*activity.Activity
	users := map[string]bool{}
	for _, r := range b.log(t, up) {
		if r.From != bridge.RoleCustomer {
			continue
		}
		users[r.Activity.From.ID] = true
		if r.Activity.Type == activity.TypeInvoke {
			invokes = append(invokes, r.Activity)
		}
	}
	require.Len(t, invokes, 2)
	require.Equal(t, "signin/tokenExchange", invokes[0].Name)
	require.JSONEq(t, `{"id":"ter-1","connectionName":"aad","token":"`+exchangeableToken+`"}`, string(invokes[0].Value), "the invoke's value unchanged")
	require.Equal(t, map[string]bool{"u1": true}, users, "one upstream user for the customer's messages and invokes")

	card := `{"contentType":"application/vnd.microsoft.card.oauth","content":{"text":"Please sign in","connectionName":"aad",` +
		`"buttons":[{"type":"signin","title":"Sign in","value":"https://token.botframework.com/api/oauth/signin?signin=9f1c2a"}],` +
		`"tokenExchangeResource":{"id":"ter-1","uri":"api://bot-sso/access_as_user","providerId":"b3c4d5"},` +
		`"tokenPostResource":{"sasUrl":"https://token.botframework.com/api/sas/post?sig=abc"}}}`
	conv, err := b.hub.Conversation(ctx, up)
	require.NoError(t, err)
	bot := conv.Bot.Bot
	_, err = b.hub.Receive(ctx, conv.Bot, &activity.Activity{Type: activity.TypeMessage, From: &bot,
		Attachments: []activity.Attachment{mustAttachment(t, card)}}, "")
	require.NoError(t, err)
	var got *activity.Activity
	require.Eventually(t, func() bool {
		for _, x := range a.cust.activities("conv-1") {
			if len(x.Attachments) > 0 {
				got = x
				return true
			}
		}
		return false
	}, waitLong, 10*time.Millisecond, "the OAuthCard reaches the customer")
	raw, err := json.Marshal(got.Attachments[0])
	require.NoError(t, err)
	require.JSONEq(t, card, string(raw), "first in attachments, every field kept, the link not re-hosted")
	for _, x := range a.cust.activities("conv-1") {
		require.NotEqual(t, activity.TypeInvokeResponse, x.Type, "invoke responses are not the customer's")
	}

	// A second customer has an upstream user of their own.
	_, _, err = a.hub.Start(ctx, "conv-2", bridge.Leg{Channel: "customer", ConversationID: "conv-2", User: activity.ChannelAccount{ID: "u2"}})
	require.NoError(t, err)
	_, err = a.hub.Receive(ctx, bridge.Leg{Channel: "customer", ConversationID: "conv-2"}, &activity.Activity{Type: activity.TypeMessage, Text: "hi", From: &activity.ChannelAccount{ID: "u2"}}, "")
	require.NoError(t, err)
	up2 := a.upstream(t, "conv-2")
	require.NotEqual(t, up, up2, "a conversation upstream per customer conversation")
	for _, r := range b.log(t, up2) {
		if r.From == bridge.RoleCustomer {
			require.Equal(t, "u2", r.Activity.From.ID)
		}
	}
}

func mustAttachment(t *testing.T, raw string) activity.Attachment {
	t.Helper()
	var att activity.Attachment
	require.NoError(t, json.Unmarshal([]byte(raw), &att))
	return att
}

// The same through a customer's Direct Line POST: bridge A's Direct Line server in front of the
// client, bridge B's in front of the bot. The customer's POST of an invoke answers 200 when the
// bot accepted it and 502 when it refused (412 upstream, reported as 502 with httpStatusCode
// 412 by B, recorded as 412 in A, reported as 502 with httpStatusCode 412 by A), as Direct Line
// does (reference/signin.md §2c).
func TestInvokeUpstreamThroughDirectLine(t *testing.T) {
	b := newSSOBridgeB(t)
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, testLog(t))
	const secretA = "bridge-a-secret-0123456789"
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	srv, err := directline.New(directline.Config{PublicURL: ts.URL, Secret: secretA, KeepAlive: time.Hour}, a.hub, zerolog.Nop())
	require.NoError(t, err)
	a.hub.Register(srv)
	srv.Register(mux)

	call := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, ts.URL+"/v3/directline"+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secretA)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, started := call(http.MethodPost, "/conversations", `{"user":{"id":"u7"}}`)
	require.Equal(t, http.StatusCreated, status)
	conv := started["conversationId"].(string)
	post := func(token string) (int, map[string]any) {
		return call(http.MethodPost, "/conversations/"+conv+"/activities",
			`{"type":"invoke","name":"signin/tokenExchange","from":{"id":"u7"},"value":{"id":"ter-1","connectionName":"aad","token":"`+token+`"}}`)
	}
	status, ok := post(exchangeableToken)
	require.Equal(t, http.StatusOK, status, "%v", ok)
	require.True(t, strings.HasPrefix(ok["id"].(string), conv+"|"))
	status, refused := post("for-another-audience")
	require.Equal(t, http.StatusBadGateway, status, "%v", refused)
	require.Equal(t, float64(412), refused["httpStatusCode"])
	require.Equal(t, "BotRejectedActivity", refused["error"].(map[string]any)["code"])

	status, hist := call(http.MethodGet, "/conversations/"+conv+"/activities", "")
	require.Equal(t, http.StatusOK, status)
	raw, _ := json.Marshal(hist)
	require.NotContains(t, string(raw), exchangeableToken, "the invoke is not in the history")
	require.NotContains(t, string(raw), "invokeResponse")
}
