package signin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/desk"
	"github.com/bfbridge/bfbridge/internal/atrest"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// The sandbox bot's signin rule (channels/desk/sandbox-bot.yaml): "sign in" gets an OAuthCard
// with the bridge's link; the customer signs in at the provider and types the code; the bot
// says it worked, without showing the token.
func TestSandboxBotSignIn(t *testing.T) {
	ctx := context.Background()
	logs := &testutil.Buffer{}
	log := zerolog.New(logs)
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: desk.BotChannelName}, log)
	bot := desk.NewBot(hub, desk.DefaultScript(), log)
	cust := &recorder{name: "dl"}
	hub.Register(bot)
	hub.Register(cust)
	_, _, err := hub.Start(ctx, "c1", bridge.Leg{Channel: "dl", ConversationID: "c1", User: activity.ChannelAccount{ID: "dl_u1"}})
	require.NoError(t, err)
	leg := bridge.Leg{Channel: "dl", ConversationID: "c1"}
	say := func(text string) {
		_, err := hub.Receive(ctx, leg, &activity.Activity{Type: activity.TypeMessage, From: &activity.ChannelAccount{ID: "dl_u1"}, Text: text}, "")
		require.NoError(t, err)
	}
	last := func() *activity.Activity {
		var a *activity.Activity
		require.Eventually(t, func() bool {
			s := cust.sent()
			if len(s) == 0 {
				return false
			}
			a = s[len(s)-1]
			return true
		}, 5*time.Second, 10*time.Millisecond)
		return a
	}

	say("please sign in")
	require.Contains(t, last().Text, "Sign-in is not set up in this sandbox", "without the token service the rule says how to set it up")

	idp := newFakeIdP(t, clientID, clientPass)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	key, _ := atrest.NewKey()
	sec := Section{Connections: []Connection{{Name: "sandbox", Provider: "oidc", Issuer: idp.issuer(), ClientID: clientID, ClientSecretEnv: "X"}}}
	svc, err := New(Config{Section: sec.withDefaults(func(string) string { return clientPass }), PublicURL: srv.URL,
		BotChannel: desk.BotChannelName, Auth: refuseAll, Key: key}, hub, log)
	require.NoError(t, err)
	svc.Register(mux)
	bot.SetSignIn(svc.SignInLink, svc.RedeemCode)

	say("please sign in")
	card := last()
	require.Len(t, card.Attachments, 1)
	require.Equal(t, OAuthCardType, card.Attachments[0].ContentType)
	var content struct {
		ConnectionName string
		Buttons        []struct{ Type, Value string }
	}
	require.NoError(t, json.Unmarshal(card.Attachments[0].Content, &content))
	require.Equal(t, "sandbox", content.ConnectionName)
	require.Equal(t, "signin", content.Buttons[0].Type)

	r := &rig{t: t, url: srv.URL}
	status, page := r.follow(content.Buttons[0].Value)
	require.Equal(t, http.StatusOK, status, page)
	code := codeRE.FindStringSubmatch(page)[1]
	say(code)
	require.Contains(t, last().Text, "You are signed in.")
	require.NotContains(t, logs.String(), "access-alice-")

	// The HTTP API serves no remote bot here.
	st, _, _ := r.call("GET", "/api/usertoken/GetToken", nil, "", testApp)
	require.Equal(t, http.StatusUnauthorized, st)
}
