package botframework

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Interop with a real Microsoft 365 Agents SDK bot (npm @microsoft/agents-hosting 1.8.1,
// conformance/interop/bots/agents-bot.js), the bridge its identity provider both ways: the SDK
// validates the bridge's tokens with the keys it fetches from
// <authority>/<tenant>/discovery/v2.0/keys (jwt-middleware buildJwksUri), checking signature,
// audience (its client id), expiry and, with validateIssuer, the issuer; it gets its own token
// from the bridge's dev token endpoint for scope https://api.botframework.com/.default (the
// scope the SDK asks for when the channel's token names no app: cloudAdapter
// createConnectorClientWithIdentity), which the bridge's Connector API then accepts. Needs node
// and `npm ci --prefix conformance/interop`; skipped without them, failed under CI.

// agentsEnv is the SDK's own configuration (loadAuthConfigFromEnv) pointing it at the bridge at
// publicURL: what the README documents for the Agents SDK.
func agentsEnv(publicURL string) map[string]string {
	const s = "connections__serviceConnection__settings__"
	return map[string]string{
		"PORT":                          "0",
		"EXIT_ON_STDIN_END":             "1",
		s + "clientId":                  testAppID,
		s + "clientSecret":              testPassword,
		s + "tenantId":                  "botframework.com",
		s + "authorityEndpoint":         publicURL,
		s + "issuers":                   DefaultIssuer,
		s + "validateIssuer":            "true",
		"connectionsMap__0__serviceUrl": "*",
		"connectionsMap__0__connection": "serviceConnection",
	}
}

// startAgents starts the bridge's listener, then the Agents SDK bot configured against it (its
// env changed by envMod), then the channel with the bot's port.
func startAgents(t *testing.T, envMod func(map[string]string)) *interopRig {
	t.Helper()
	return startNodeBot(t, "bots/agents-bot.js", agentsEnv, envMod)
}

// Both ways: the SDK accepts the bridge's token (keys from the discovery path), and the bridge
// accepts the SDK's replies with the token its dev endpoint issued for the scope the SDK asked.
func TestInteropAgentsSDKAuthenticated(t *testing.T) {
	r := startAgents(t, nil)
	ctx := context.Background()
	r.start("agents-conv")
	customer := bridge.Leg{Channel: "directline", ConversationID: "agents-conv"}
	user := &activity.ChannelAccount{ID: "u1", Name: "User"}

	id, err := r.hub.Receive(ctx, customer, &activity.Activity{Type: activity.TypeMessage, Text: "hello agents", From: user}, "")
	require.NoError(t, err, "node output:\n%s", r.node.Output())
	r.waitCustomer(t, "the welcome", func(a *activity.Activity) bool { return a.Text == "agent welcome" })
	echo := r.waitCustomer(t, "the echo", func(a *activity.Activity) bool { return a.Text == "agent echo: hello agents" })
	require.Equal(t, id, echo.ReplyToID)

	auth := r.node.Next(t, interopTimeout, func(m map[string]any) bool { return m["auth"] != nil })
	require.Equal(t, map[string]any{"auth": "ok", "iss": DefaultIssuer, "aud": testAppID}, auth, "the SDK verified the bridge's token")
	tok := r.node.Next(t, interopTimeout, func(m map[string]any) bool { return m["token"] != nil })
	require.Equal(t, "ok", tok["token"])
	require.Equal(t, ConnectorAudience, tok["scope"], "the scope the SDK asks for by default")
	require.Contains(t, r.logs.String(), "dev token issued")
	require.NotContains(t, r.logs.String(), "connector call refused")
}

// The SDK refuses the bridge's tokens when they are not good: signed by another key (not in
// the discovery keys), for another app, expired, from another issuer, or missing; nothing it
// would have said reaches the hub. A good token afterwards still works.
func TestInteropAgentsSDKRefusesBadChannelTokens(t *testing.T) {
	r := startAgents(t, nil)
	conv := r.start("agents-neg")
	cases := []struct {
		name string
		hook func(*channelToken)
	}{
		{"forged", func(tk *channelToken) { tk.Key = otherKey() }},
		{"wrong audience", func(tk *channelToken) { tk.Claims["aud"] = "another-bot" }},
		{"expired", func(tk *channelToken) {
			tk.Claims["nbf"] = time.Now().Add(-30 * time.Minute).Unix()
			tk.Claims["exp"] = time.Now().Add(-10 * time.Minute).Unix()
		}},
		{"wrong issuer", func(tk *channelToken) { tk.Claims["iss"] = "https://elsewhere.example" }},
		{"missing header", func(tk *channelToken) { tk.Omit = true }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hook := tc.hook
			r.ch.tokenHook.Store(&hook)
			defer r.ch.tokenHook.Store(nil)
			_, err := r.ch.Send(context.Background(), conv.Bot, &activity.Activity{
				Type: activity.TypeMessage, ID: bridge.FormatActivityID("agents-neg", int64(i)), Text: "refused " + tc.name,
				From: &activity.ChannelAccount{ID: "u1"},
			})
			var de *bridge.DeliveryError
			require.ErrorAs(t, err, &de, "node output:\n%s", r.node.Output())
			require.Equal(t, http.StatusUnauthorized, de.Status, "%v", err)
			refused := r.node.Next(t, interopTimeout, func(m map[string]any) bool { return m["auth"] != nil })
			require.Equal(t, "refused", refused["auth"])
			require.Empty(t, r.customer.sent(), "nothing reached the hub")
		})
	}
	_, err := r.ch.Send(context.Background(), conv.Bot, &activity.Activity{
		Type: activity.TypeMessage, ID: bridge.FormatActivityID("agents-neg", 99), Text: "good", From: &activity.ChannelAccount{ID: "u1"},
	})
	require.NoError(t, err, "node output:\n%s", r.node.Output())
	r.waitCustomer(t, "the echo of the good message", func(a *activity.Activity) bool { return a.Text == "agent echo: good" })
}

// The bridge refuses the SDK's replies when the SDK cannot get a token the Connector accepts:
// a wrong password (invalid_client) — the turn fails and nothing is recorded.
func TestInteropBridgeRefusesAgentsSDKWithoutToken(t *testing.T) {
	r := startAgents(t, func(e map[string]string) {
		e["connections__serviceConnection__settings__clientSecret"] = "not-the-password"
	})
	conv := r.start("agents-bad")
	_, err := r.ch.Send(context.Background(), conv.Bot, &activity.Activity{
		Type: activity.TypeMessage, ID: "agents-bad|0000000", Text: "hi", From: &activity.ChannelAccount{ID: "u1"},
	})
	var de *bridge.DeliveryError
	require.ErrorAs(t, err, &de, "the bot's turn fails; node output:\n%s", r.node.Output())
	tok := r.node.Next(t, interopTimeout, func(m map[string]any) bool { return m["token"] != nil })
	require.Equal(t, map[string]any{"token": "refused", "scope": ConnectorAudience, "status": float64(http.StatusUnauthorized), "error": "invalid_client"}, tok)
	require.Empty(t, r.customer.sent())
	require.Empty(t, r.log("agents-bad"))
}
