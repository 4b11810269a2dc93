package botframework

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// Interop with a real botbuilder 4.23.3 bot (conformance/interop/bots/echo-bot.js): the bridge
// is the bot's identity provider both ways, as in botframework.md §8 B. Needs node and
// `npm ci --prefix conformance/interop`; skipped without them, failed under CI.

const interopTimeout = 20 * time.Second

// interopRig is a bridge serving on 127.0.0.1 with the real bot behind its botframework channel.
type interopRig struct {
	*rig
	node *testutil.NodeProc
}

// botEnv is the §8 B environment that points a botbuilder bot at the bridge at publicURL.
func botEnv(publicURL string) map[string]string {
	meta := publicURL + OpenIDMetadataPath
	return map[string]string{
		"PORT":                               "0",
		"EXIT_ON_STDIN_END":                  "1",
		"MicrosoftAppId":                     testAppID,
		"MicrosoftAppPassword":               testPassword,
		"ToBotFromChannelOpenIdMetadataUrl":  meta,
		"ToBotFromEmulatorOpenIdMetadataUrl": meta,
		"ToBotFromChannelTokenIssuer":        DefaultIssuer,
		"ToChannelFromBotLoginUrl":           publicURL + LoginPath,
		"ToChannelFromBotOAuthScope":         DefaultIssuer,
		"OAuthUrl":                           publicURL,
		"CallerId":                           "urn:botframework:bridge",
	}
}

// startInterop starts the bridge's listener, then the botbuilder echo bot configured against it
// (its env changed by envMod), then the channel with the bot's port.
func startInterop(t *testing.T, envMod func(map[string]string)) *interopRig {
	t.Helper()
	return startNodeBot(t, "bots/echo-bot.js", botEnv, envMod)
}

// startNodeBot starts the bridge's listener, then the node bot script with the environment env
// makes for the bridge's public URL (changed by envMod), then the channel with the bot's port.
func startNodeBot(t *testing.T, script string, env func(publicURL string) map[string]string, envMod func(map[string]string)) *interopRig {
	t.Helper()
	dir := testutil.InteropDir(t)
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	publicURL := "http://" + srv.Listener.Addr().String()
	vars := env(publicURL)
	if envMod != nil {
		envMod(vars)
	}
	var list []string
	for k, v := range vars {
		list = append(list, k+"="+v)
	}
	slices.Sort(list)
	node := testutil.StartNode(t, dir, script, list)
	port := node.Listening(t, interopTimeout)
	r := buildRig(t, mux, srv, "http://127.0.0.1:"+port+"/api/messages", func(c *Config) { c.DeliveryTimeout = 15 * time.Second })
	return &interopRig{rig: r, node: node}
}

// waitCustomer waits until the customer has been sent an activity that match accepts.
func (r *interopRig) waitCustomer(t *testing.T, what string, match func(*activity.Activity) bool) *activity.Activity {
	t.Helper()
	var found *activity.Activity
	deadline := time.Now().Add(interopTimeout)
	for found == nil {
		for _, a := range r.customer.sent() {
			if match(a) {
				found = a
				break
			}
		}
		if found == nil {
			if time.Now().After(deadline) {
				t.Fatalf("the customer never got %s; node output:\n%s", what, r.node.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return found
}

// The bot accepts the bridge's tokens; the bridge accepts the bot's authenticated replies, on
// a conversation id that botbuilder has to escape.
func TestInteropBotbuilderAuthenticated(t *testing.T) {
	r := startInterop(t, nil)
	ctx := context.Background()
	r.start(hardConvID)
	customer := bridge.Leg{Channel: "directline", ConversationID: hardConvID}
	user := &activity.ChannelAccount{ID: "u1", Name: "User"}

	id, err := r.hub.Receive(ctx, customer, &activity.Activity{Type: activity.TypeMessage, Text: "hello interop", From: user}, "")
	require.NoError(t, err, "node output:\n%s", r.node.Output())
	r.waitCustomer(t, "the welcome", func(a *activity.Activity) bool { return a.Text == "welcome" })
	echo := r.waitCustomer(t, "the echo", func(a *activity.Activity) bool { return a.Text == "echo: hello interop" })
	require.Equal(t, id, echo.ReplyToID, "botbuilder replied with ReplyToActivity")
	require.Equal(t, "bot", echo.From.ID)
	require.Contains(t, r.logs.String(), "dev token issued", "the bot got its Connector token from the bridge")

	// handoff.initiate from EventFactory.createHandoffInitiation is recorded as sent, kept from
	// the customer (a command for the bridge), and answered: with no contact center here, the
	// bot hears handoff.status failed, which a botbuilder bot must accept (botframework.md §6).
	_, err = r.hub.Receive(ctx, customer, &activity.Activity{Type: activity.TypeMessage, Text: "handoff", From: user}, "")
	require.NoError(t, err)
	var ho *activity.Activity
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		recs, err := r.hub.Since(ctx, hardConvID, -1, 0)
		if !assert.NoError(c, err) {
			return
		}
		for _, rec := range recs {
			if rec.Activity.Name == "handoff.initiate" {
				ho = rec.Activity
			}
		}
		assert.NotNil(c, ho)
	}, 10*time.Second, 10*time.Millisecond, "the handoff event in the conversation's log")
	require.Equal(t, activity.TypeEvent, ho.Type)
	require.JSONEq(t, `{"skill":"human","reason":"asked"}`, string(ho.Value))
	require.Len(t, ho.Attachments, 1, "EventFactory attaches the bot's transcript")
	require.Equal(t, "Transcript", ho.Attachments[0].Name)
	var tr struct{ Activities []struct{ Text string } }
	require.NoError(t, json.Unmarshal(ho.Attachments[0].Content, &tr))
	require.GreaterOrEqual(t, len(tr.Activities), 3, "hello, its echo, handoff")
	require.Equal(t, "hello interop", tr.Activities[0].Text)
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, r.hub.Wait(waitCtx))
	require.NotContains(t, r.logs.String(), "handoff.status not delivered", "the bot accepts handoff.status")

	// An invoke's answer comes back as an invokeResponse.
	invID, resp, err := r.hub.Invoke(ctx, customer, &activity.Activity{Type: activity.TypeInvoke, Name: "test/ping", From: user}, "")
	require.NoError(t, err)
	require.NotEmpty(t, invID)
	require.Equal(t, 200, resp.Status)
	require.JSONEq(t, `{"echo":"test/ping"}`, string(resp.Body))
	for _, a := range r.customer.sent() {
		require.NotEqual(t, activity.TypeInvokeResponse, a.Type, "the invoke's answer is not for the customer")
	}

	require.NotContains(t, r.logs.String(), testPassword)
}

// Tokens the real bot must refuse (botframework.md §4.1, §8 B): botbuilder answers 401 (or 500
// for a bad signature), and nothing it would have said reaches the hub. A good token afterwards
// still works, so the refusals were the tokens' fault.
func TestInteropBotbuilderRefusesBadChannelTokens(t *testing.T) {
	r := startInterop(t, nil)
	conv := r.start("neg")
	cases := []struct {
		name      string
		hook      func(*channelToken)
		channelID string
		reason    string // in botbuilder's answer
	}{
		{name: "forged", hook: func(tk *channelToken) { tk.Key = otherKey() }, reason: "invalid signature"},
		{name: "expired", hook: func(tk *channelToken) {
			tk.Claims["nbf"] = time.Now().Add(-30 * time.Minute).Unix()
			tk.Claims["exp"] = time.Now().Add(-10 * time.Minute).Unix()
		}, reason: "expired"},
		{name: "wrong audience", hook: func(tk *channelToken) { tk.Claims["aud"] = "another-bot" }, reason: "Invalid AppId"},
		{name: "wrong serviceurl", hook: func(tk *channelToken) { tk.Claims["serviceurl"] = "http://evil.example/" }, reason: "ServiceUrl claim"},
		{name: "wrong issuer", hook: func(tk *channelToken) { tk.Claims["iss"] = "https://api.botframework.com" }, reason: "No valid identity"},
		{name: "skill-looking claims", hook: func(tk *channelToken) { tk.Claims["ver"] = "2.0"; tk.Claims["azp"] = "other-app" }, reason: "SkillValidation"},
		{name: "missing header", hook: func(tk *channelToken) { tk.Omit = true }, reason: "not authorized"},
		{name: "unendorsed channel", channelID: "unendorsed-channel", reason: "endorsement"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hook != nil {
				hook := tc.hook
				r.ch.tokenHook.Store(&hook)
				defer r.ch.tokenHook.Store(nil)
			}
			_, err := r.ch.Send(context.Background(), conv.Bot, &activity.Activity{
				Type: activity.TypeMessage, ID: bridge.FormatActivityID("neg", int64(i)), Text: "refused " + tc.name,
				ChannelID: tc.channelID, From: &activity.ChannelAccount{ID: "u1"},
			})
			var de *bridge.DeliveryError
			require.ErrorAs(t, err, &de, "node output:\n%s", r.node.Output())
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusInternalServerError}, de.Status, "%v", err)
			require.Contains(t, err.Error(), tc.reason)
			t.Logf("botbuilder refused: %v", err)
			require.Empty(t, r.customer.sent(), "nothing reached the hub")
			require.Empty(t, r.log("neg"))
		})
	}
	_, err := r.ch.Send(context.Background(), conv.Bot, &activity.Activity{
		Type: activity.TypeMessage, ID: "neg|0000099", Text: "good", From: &activity.ChannelAccount{ID: "u1"},
	})
	require.NoError(t, err, "node output:\n%s", r.node.Output())
	r.waitCustomer(t, "the echo of the good message", func(a *activity.Activity) bool { return a.Text == "echo: good" })
}

// The bridge refuses the real bot's Connector calls when its token is not one the bridge
// accepts: none, because the bot asked for a scope the dev token endpoint does not issue
// (invalid_scope) or because its password is wrong. The bot's turn then fails, and nothing is recorded.
func TestInteropBridgeRefusesBadBotTokens(t *testing.T) {
	cases := []struct {
		name string
		env  func(map[string]string)
		log  string
	}{
		{"wrong scope", func(e map[string]string) { e["ToChannelFromBotOAuthScope"] = "https://graph.microsoft.com" }, `"oauth_error":"invalid_scope"`},
		{"wrong password", func(e map[string]string) { e["MicrosoftAppPassword"] = "not-the-password" }, "token request refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startInterop(t, tc.env)
			conv := r.start("bad")
			_, err := r.ch.Send(context.Background(), conv.Bot, &activity.Activity{
				Type: activity.TypeMessage, ID: "bad|0000000", Text: "hi", From: &activity.ChannelAccount{ID: "u1"},
			})
			var de *bridge.DeliveryError
			require.ErrorAs(t, err, &de, "the bot's turn fails; node output:\n%s", r.node.Output())
			require.Equal(t, http.StatusInternalServerError, de.Status)
			require.Empty(t, r.customer.sent())
			require.Empty(t, r.log("bad"))
			require.True(t, strings.Contains(r.logs.String(), tc.log), "bridge log lacks %q", tc.log)
		})
	}
}
