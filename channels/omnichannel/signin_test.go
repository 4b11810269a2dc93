package omnichannel

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// signinBot is a bot behind Omnichannel that signs customers in the way botbuilder's OAuthPrompt
// does on a Copilot-like channel (reference/signin.md §2a, §2c, §4):
//
//	"login"                 an OAuthCard (filled link on *.botframework.com, tokenExchangeResource,
//	                        tokenPostResource), then a SigninCard with the same link
//	signin/tokenExchange    200 {id, connectionName} for the token its token service exchanges,
//	                        412 "unable to exchange token" for any other, 400 without a token
//	any other invoke        501, as a bare ActivityHandler answers (reference/signin.md §2c)
//
// Its answers to invokes are recorded as the botframework channel records a Connector bot's
// (bridge.NewInvokeResponse, the idempotency key of the invoke). It keeps what it received.
type signinBot struct {
	hub *bridge.Hub
	mu  sync.Mutex
	got []*activity.Activity
}

const (
	signinLink      = "https://token.botframework.com/api/oauth/signin?signin=9f1c2a7e"
	ssoToken        = "sso-token-from-the-widget"
	oauthCardJSON   = `{"contentType":"application/vnd.microsoft.card.oauth","content":{"text":"Please sign in","connectionName":"aad","buttons":[{"type":"signin","title":"Sign in","value":"` + signinLink + `"}],"tokenExchangeResource":{"id":"ter-7","uri":"api://copilot-sso/access_as_user","providerId":"b3c4d5"},"tokenPostResource":{"sasUrl":"https://token.botframework.com/api/sas/post?sig=abc"}}}`
	signinCardJSON  = `{"contentType":"application/vnd.microsoft.card.signin","content":{"text":"Or sign in here","buttons":[{"type":"signin","title":"Sign in","value":"` + signinLink + `"}]}}`
	exchangeRefusal = "The bot is unable to exchange token. Proceed with regular login."
)

func (b *signinBot) Name() string { return "signinbot" }

func (b *signinBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	b.mu.Lock()
	b.got = append(b.got, a)
	b.mu.Unlock()
	bot := to.Bot
	switch {
	case a.Type == activity.TypeMessage && a.Text == "login":
		var oauth, signin activity.Attachment
		if err := json.Unmarshal([]byte(oauthCardJSON), &oauth); err != nil {
			return "", err
		}
		if err := json.Unmarshal([]byte(signinCardJSON), &signin); err != nil {
			return "", err
		}
		_, err := b.hub.Receive(ctx, to, &activity.Activity{Type: activity.TypeMessage, From: &bot, ReplyToID: a.ID,
			InputHint: activity.InputHintAccepting, Attachments: []activity.Attachment{oauth, signin}}, "")
		return "", err
	case a.Type == activity.TypeInvoke:
		status, body := b.answer(a)
		ir, err := bridge.NewInvokeResponse(a, to, status, body)
		if err != nil {
			return "", err
		}
		_, err = b.hub.Receive(ctx, to, ir, bridge.InvokeResponseKey(a.ID))
		return "", err
	}
	return "", nil
}

func (b *signinBot) answer(a *activity.Activity) (int, []byte) {
	if a.Name != "signin/tokenExchange" {
		return http.StatusNotImplemented, nil
	}
	var v struct{ ID, ConnectionName, Token string }
	_ = json.Unmarshal(a.Value, &v)
	ans := map[string]string{"id": v.ID, "connectionName": v.ConnectionName}
	status := http.StatusOK
	switch {
	case v.Token == "":
		status, ans["failureDetail"] = http.StatusBadRequest, "The bot received an InvokeActivity that is missing a TokenExchangeInvokeRequest value."
	case v.Token != ssoToken:
		status, ans["failureDetail"] = http.StatusPreconditionFailed, exchangeRefusal
	}
	body, _ := json.Marshal(ans)
	return status, body
}

func (b *signinBot) received(typ string) []*activity.Activity {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*activity.Activity
	for _, a := range b.got {
		if a.Type == typ {
			out = append(out, a)
		}
	}
	return out
}

// T1 sign-in pass-through (reference/signin.md §7), the fake Omnichannel on one side and the bot
// on the other: the bot's OAuthCard and SigninCard reach Omnichannel verbatim, first in
// attachments, the botframework.com link kept for the widget's regex (§4); the widget's
// signin/tokenExchange reaches the bot unchanged and Omnichannel's POST is answered with the
// bot's invoke response, status and body unchanged (200, 412, 400), and an unknown invoke's 501
// too; the invoke response never goes to Omnichannel as a reply. A Hidden-tagged 6-digit code,
// a tokens/response event and an unknown event reach the bot unchanged.
func TestT1SignInPassThrough(t *testing.T) {
	var bot *signinBot
	r := newRig(t, rigOptions{botChannel: "signinbot", bots: func(r *rig, hub *bridge.Hub) {
		bot = &signinBot{hub: hub}
		hub.Register(bot)
	}})
	const oc = "oc-signin-1"
	r.oc.mustPost(r.oc.contextEvent(oc))
	r.oc.mustPost(r.oc.message(oc, "login"))

	var card *activity.Activity
	require.Eventually(t, func() bool {
		for _, a := range r.oc.got(oc) {
			if len(a.Attachments) > 0 {
				card = a
				return true
			}
		}
		return false
	}, waitFor, 10*time.Millisecond, "omnichannel got the sign-in cards")
	require.Len(t, card.Attachments, 2)
	for i, want := range []string{oauthCardJSON, signinCardJSON} {
		raw, err := json.Marshal(card.Attachments[i])
		require.NoError(t, err)
		require.JSONEq(t, want, string(raw), "attachment %d verbatim", i)
	}
	require.Equal(t, "bridged", deliveryMode(card))

	invoke := func(name, value string) *activity.Activity {
		a := r.oc.message(oc, "")
		a.Type, a.Name, a.Value, a.TextFormat = activity.TypeInvoke, name, json.RawMessage(value), ""
		return a
	}
	cases := []struct {
		name, value, body string
		status            int
	}{
		{"signin/tokenExchange", `{"id":"ter-7","connectionName":"aad","token":"` + ssoToken + `"}`, `{"id":"ter-7","connectionName":"aad"}`, 200},
		{"signin/tokenExchange", `{"id":"ter-7","connectionName":"aad","token":"for-another-audience"}`, `{"id":"ter-7","connectionName":"aad","failureDetail":"` + exchangeRefusal + `"}`, 412},
		{"signin/tokenExchange", `{"id":"ter-7","connectionName":"aad"}`, "", 400},
		{"vendor/unknownInvoke", `{"x":1}`, "", 501},
	}
	for _, tc := range cases {
		status, body := r.oc.post(invoke(tc.name, tc.value), tokenOpts{})
		require.Equal(t, tc.status, status, "%s %s: %s", tc.name, tc.value, body)
		if tc.body != "" {
			require.JSONEq(t, tc.body, body, "the bot's invoke response body, unchanged")
		}
	}
	invokes := bot.received(activity.TypeInvoke)
	require.Len(t, invokes, len(cases))
	for i, tc := range cases {
		require.Equal(t, tc.name, invokes[i].Name)
		require.JSONEq(t, tc.value, string(invokes[i].Value), "the invoke's value unchanged")
		require.Equal(t, customerID, invokes[i].From.ID)
	}

	code := r.oc.message(oc, "493021")
	code.ChannelData = json.RawMessage(`{"tags":["Hidden"],"metadata":{"deliveryMode":"bridged"}}`)
	r.oc.mustPost(code)
	tr := r.oc.message(oc, "")
	tr.Type, tr.Name, tr.Value = activity.TypeEvent, "tokens/response", json.RawMessage(`{"connectionName":"aad","token":"tok-123"}`)
	r.oc.mustPost(tr)
	unknown := r.oc.message(oc, "")
	unknown.Type, unknown.Name, unknown.Value = activity.TypeEvent, "vendor/somethingNew", json.RawMessage(`{"y":[1,2]}`)
	r.oc.mustPost(unknown)

	require.Eventually(t, func() bool { return len(bot.received(activity.TypeEvent)) >= 3 }, waitFor, 10*time.Millisecond, "the events reach the bot")
	messages := bot.received(activity.TypeMessage)
	hidden := messages[len(messages)-1]
	require.Equal(t, "493021", hidden.Text, "the Hidden-tagged code reaches the bot")
	require.JSONEq(t, `["Hidden"]`, string(hidden.ChannelDataField("tags")))
	events := bot.received(activity.TypeEvent)
	names := []string{}
	for _, e := range events {
		names = append(names, e.Name)
	}
	require.Subset(t, names, []string{"tokens/response", "vendor/somethingNew"})
	for _, e := range events {
		switch e.Name {
		case "tokens/response":
			require.JSONEq(t, `{"connectionName":"aad","token":"tok-123"}`, string(e.Value))
		case "vendor/somethingNew":
			require.JSONEq(t, `{"y":[1,2]}`, string(e.Value))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, r.hub.Wait(ctx))
	for _, a := range r.oc.got(oc) {
		require.NotEqual(t, activity.TypeInvokeResponse, a.Type, "the invoke's answer went back in the POST, not as a reply")
		require.False(t, slices.Contains([]string{"493021"}, a.Text))
	}
	require.NotContains(t, r.logs.String(), ssoToken, "tokens are never logged")
	require.NotContains(t, r.logs.String(), "tok-123")
}

// Invokes through T1 to a real botbuilder 4.23.3 bot (conformance/interop/bots/echo-bot.js),
// self-hosted (botframework) or hosted behind Direct Line (dlclient → the bridge's own Direct
// Line server → the bot): Omnichannel's invoke POST is answered with the bot's invoke response.
// test/ping: 200 (with the bot's body where the bot's answer reaches the bridge: Direct Line
// passes statuses, not bodies). signin/tokenExchange: ActivityHandler's own 501 — through
// Direct Line, a 502 with httpStatusCode 501, read back as 501.
func TestT1InvokesReachRealBot(t *testing.T) {
	for _, upstream := range []string{upstreamBotFramework, upstreamDirectLine} {
		t.Run(upstream, func(t *testing.T) {
			t.Parallel()
			x := startT1(t, upstream, "echo-bot.js")
			oc := "t1-invoke-" + upstream
			x.oc.mustPost(x.oc.contextEvent(oc))
			x.oc.mustPost(x.oc.message(oc, "hello"))
			x.waitTexts(oc, "echo: hello")
			invoke := func(name string) (int, string) {
				a := x.oc.message(oc, "")
				a.Type, a.Name, a.TextFormat = activity.TypeInvoke, name, ""
				a.Value = json.RawMessage(`{"id":"ter-1","connectionName":"aad","token":"` + ssoToken + `"}`)
				return x.oc.post(a, tokenOpts{})
			}
			status, body := invoke("test/ping")
			require.Equal(t, http.StatusOK, status, body)
			if upstream == upstreamBotFramework {
				require.JSONEq(t, `{"echo":"test/ping"}`, body)
			}
			status, body = invoke("signin/tokenExchange")
			require.Equal(t, http.StatusNotImplemented, status, body)
			for _, a := range x.oc.got(oc) {
				require.NotEqual(t, activity.TypeInvokeResponse, a.Type)
			}
			require.NotContains(t, x.logs.String(), ssoToken)
		})
	}
}
