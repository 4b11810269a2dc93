package botframework

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// A customer message reaches the bot with a token the bot accepts, and the bot's authenticated
// reply comes back through the Connector API to the customer.
func TestRoundTripAuthenticated(t *testing.T) {
	r := newRig(t, nil)
	r.start("conv1")
	id, err := r.say("conv1", "zebra-private-text")
	require.NoError(t, err)

	got := r.bot.received()
	require.Len(t, got, 3, "two conversationUpdates, then the message")
	require.Equal(t, activity.TypeConversationUpdate, got[0].Type)
	msg := got[2]
	require.Equal(t, id, msg.ID)
	require.Equal(t, r.url+"/", msg.ServiceURL, "serviceUrl is the public URL with one trailing slash")
	require.Equal(t, "directline", msg.ChannelID)
	require.Equal(t, "bot", msg.Recipient.ID)
	require.Equal(t, "conv1", msg.Conversation.ID)
	require.Equal(t, "u1", msg.From.ID)
	require.Empty(t, r.bot.refusals())
	require.Equal(t, []int{http.StatusOK}, r.bot.replyStatuses())

	require.Eventually(t, func() bool { return len(r.customer.sent()) == 1 }, 5*time.Second, 10*time.Millisecond, "the echo reaches the customer")
	echo := r.customer.sent()[0]
	require.Equal(t, "echo: zebra-private-text", echo.Text)
	require.Equal(t, id, echo.ReplyToID)
	recs := r.log("conv1")
	require.Len(t, recs, 2)
	require.Equal(t, bridge.RoleBot, recs[1].From)

	// The token is reused while fresh, and names the published key.
	auths := r.bot.authHeaders()
	require.Len(t, auths, 3)
	require.Equal(t, auths[0], auths[2])
	raw := strings.TrimPrefix(auths[0], "Bearer ")
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, r.ch.KeyID(), tok.Header["kid"])
	claims := tok.Claims.(jwt.MapClaims)
	for _, forbidden := range []string{"ver", "appid", "azp", "tid"} {
		require.NotContains(t, claims, forbidden, "botframework.md §4.1")
	}

	// Nothing secret or private was logged.
	logs := r.logs.String()
	require.NotEmpty(t, logs)
	require.NotContains(t, logs, testPassword)
	require.NotContains(t, logs, "zebra-private-text")
	require.NotContains(t, logs, "eyJ", "no JWT in the logs")
}

// Send stamps serviceUrl, channelId, recipient and conversation, keeps what it should and strips
// what channels must not send to bots, without touching the logged record.
func TestSendPreparesTheActivity(t *testing.T) {
	r := newRig(t, func(c *Config) { c.ChannelID = "webchat" })
	conv := r.start("c2")
	in, err := activity.Decode([]byte(`{"type":"event","name":"custom","id":"c2|0000007","timestamp":"2024-01-02T03:04:05.123Z",
		"localTimestamp":"2024-01-02T05:04:05.123+02:00","serviceUrl":"http://elsewhere.example/","callerId":"urn:botframework:azure",
		"from":{"id":"u1","name":"User"},"recipient":{"id":"someone"},"conversation":{"id":"other","name":"keep me"},
		"speak":"<speak/>","summary":"sum","channelData":{"clientActivityID":"x1"},"x-unknown":{"kept":true},
		"attachments":[{"contentType":"image/png","contentUrl":"http://files.example/a.png","thumbnailUrl":"http://files.example/t.png"}]}`))
	require.NoError(t, err)
	before, err := activity.Marshal(in)
	require.NoError(t, err)

	_, err = r.ch.Send(context.Background(), conv.Bot, in)
	require.NoError(t, err)
	after, err := activity.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after), "the record is read-only")

	got := r.bot.received()
	require.Len(t, got, 1)
	a := got[0]
	require.Equal(t, r.url+"/", a.ServiceURL)
	require.Equal(t, "webchat", a.ChannelID, "stamped when missing")
	require.Equal(t, "bot", a.Recipient.ID)
	require.Equal(t, "c2", a.Conversation.ID)
	require.Equal(t, "keep me", a.Conversation.Name)
	require.Equal(t, "c2|0000007", a.ID)
	require.Equal(t, "2024-01-02T03:04:05.123Z", a.Timestamp.String())
	require.Equal(t, "2024-01-02T05:04:05.123+02:00", a.LocalTimestamp.String())
	require.Equal(t, "u1", a.From.ID)
	require.Equal(t, "x1", a.ClientActivityID())
	require.JSONEq(t, `{"kept":true}`, string(a.Extra["x-unknown"]))
	require.Empty(t, a.Speak)
	require.Empty(t, a.Summary)
	require.Empty(t, a.CallerID)
	require.Empty(t, a.Attachments[0].ThumbnailURL)
	require.Equal(t, "http://files.example/a.png", a.Attachments[0].ContentURL)

	// A channelId that is set is kept.
	in2 := &activity.Activity{Type: activity.TypeEvent, Name: "e", ChannelID: "directline"}
	_, err = r.ch.Send(context.Background(), conv.Bot, in2)
	require.NoError(t, err)
	require.Equal(t, "directline", r.bot.received()[1].ChannelID)

	// Activities that never go to bots are dropped without a call.
	for _, typ := range []string{activity.TypeHandoff, activity.TypeSuggestion, activity.TypeDelay} {
		_, err = r.ch.Send(context.Background(), conv.Bot, &activity.Activity{Type: typ})
		require.NoError(t, err)
	}
	require.Len(t, r.bot.received(), 2)
}

// Tokens the bot must refuse (botframework.md §4.1): the bot answers 401, Send reports it, and
// nothing the bot would have said reaches the hub.
func TestChannelTokensTheBotRefuses(t *testing.T) {
	cases := []struct {
		name      string
		hook      func(*channelToken)
		channelID string
		reason    string
	}{
		{name: "forged", hook: func(tk *channelToken) { tk.Key = otherKey() }, reason: "signature"},
		{name: "expired", hook: func(tk *channelToken) {
			tk.Claims["nbf"] = time.Now().Add(-30 * time.Minute).Unix()
			tk.Claims["exp"] = time.Now().Add(-10 * time.Minute).Unix()
		}, reason: "expired"},
		{name: "wrong audience", hook: func(tk *channelToken) { tk.Claims["aud"] = "another-bot" }, reason: "aud"},
		{name: "wrong serviceurl", hook: func(tk *channelToken) { tk.Claims["serviceurl"] = "http://evil.example/" }, reason: "serviceurl"},
		{name: "wrong issuer", hook: func(tk *channelToken) { tk.Claims["iss"] = "https://api.botframework.com" }, reason: "iss"},
		{name: "skill-looking claims", hook: func(tk *channelToken) { tk.Claims["ver"] = "2.0"; tk.Claims["azp"] = "other-app" }, reason: "skill"},
		{name: "missing header", hook: func(tk *channelToken) { tk.Omit = true }, reason: "bearer"},
		{name: "unendorsed channel", channelID: "unendorsed-channel", reason: "endorsement"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			conv := r.start("neg")
			if tc.hook != nil {
				r.ch.tokenHook.Store(&tc.hook)
			}
			_, err := r.ch.Send(context.Background(), conv.Bot,
				&activity.Activity{Type: activity.TypeMessage, ID: "neg|0000000", Text: "hi", ChannelID: tc.channelID, From: &activity.ChannelAccount{ID: "u1"}})
			var de *bridge.DeliveryError
			require.ErrorAs(t, err, &de)
			require.Equal(t, http.StatusUnauthorized, de.Status)
			require.False(t, de.Retryable)
			require.Empty(t, r.bot.received(), "the bot processed nothing")
			refused := r.bot.refusals()
			if tc.name != "missing header" {
				require.Len(t, refused, 1)
				require.Contains(t, strings.ToLower(refused[0]), tc.reason)
			}
			require.Empty(t, r.customer.sent(), "nothing reached the hub")
			require.Empty(t, r.log("neg"))
		})
	}
}

// An invoke's answer is recorded as an invokeResponse to the invoke.
func TestSendInvokeResponse(t *testing.T) {
	r := newRig(t, nil)
	r.start("inv")
	id, err := r.hub.Receive(context.Background(), bridge.Leg{Channel: "directline", ConversationID: "inv"}, &activity.Activity{Type: activity.TypeInvoke, Name: "adaptiveCard/action", Value: json.RawMessage(`{"a":1}`), From: &activity.ChannelAccount{ID: "u1"}}, "")

	require.NoError(t, err)
	require.Empty(t, r.customer.sent(), "an invoke response is the invoke's answer, not a message for the customer")
	recs, err := r.hub.Since(context.Background(), "inv", -1, 0)
	require.NoError(t, err)
	ir := recs[len(recs)-1]
	require.Equal(t, bridge.RoleBot, ir.From)
	require.Equal(t, activity.TypeInvokeResponse, ir.Activity.Type)
	require.Equal(t, id, ir.Activity.ReplyToID)
	require.JSONEq(t, `{"status":200,"body":{"echo":"adaptiveCard/action"}}`, string(ir.Activity.Value))
	require.Equal(t, "bot", ir.Activity.From.ID)
	resp, err := r.hub.AwaitInvokeResponse(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
}

// Whatever status the bot answers an invoke with is its invoke response (CloudAdapter answers
// with the status the bot set: botframework.md §3), recorded and not retried; 429 and 503 are
// refusals to take it, retried by the outbox, and no answer.
func TestSendInvokeRefusedIsAnswer(t *testing.T) {
	cases := []struct {
		name    string
		token   string
		status  int
		failure string
	}{
		{name: "exchanged", token: fakeExchangeToken, status: 200},
		{name: "412", token: "not-exchangeable", status: 412, failure: "unable to exchange token"},
		{name: "400", token: "", status: 400, failure: "missing a TokenExchangeInvokeRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			conv := r.start("x")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			inv := &activity.Activity{Type: activity.TypeInvoke, Name: "signin/tokenExchange", From: &activity.ChannelAccount{ID: "u1"},
				Value: json.RawMessage(`{"id":"ter-1","connectionName":"aad","token":"` + tc.token + `"}`)}
			id, resp, err := r.hub.Invoke(ctx, conv.Customer, inv, "")
			require.NoError(t, err, "an answer, whatever its status, is a delivery")
			require.Equal(t, tc.status, resp.Status)
			var body struct{ ID, ConnectionName, FailureDetail string }
			require.NoError(t, json.Unmarshal(resp.Body, &body))
			require.Equal(t, "ter-1", body.ID)
			require.Contains(t, body.FailureDetail, tc.failure)
			require.Empty(t, r.customer.sent())
			c, err := r.hub.Conversation(ctx, conv.ID)
			require.NoError(t, err)
			require.Empty(t, c.Dead, "answered, not dead")
			again, err := r.hub.AwaitInvokeResponse(ctx, id)
			require.NoError(t, err)
			require.Equal(t, resp, again)
		})
	}
	t.Run("503 is no answer", func(t *testing.T) {
		r := newRig(t, nil)
		conv := r.start("y")
		r.bot.set(func(b *fakeBot) { b.status = 503 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		inv := &activity.Activity{Type: activity.TypeInvoke, Name: "signin/tokenExchange", From: &activity.ChannelAccount{ID: "u1"}}
		id, _, err := r.hub.Invoke(ctx, conv.Customer, inv, "")
		require.NotEmpty(t, id, "recorded")
		var de *bridge.DeliveryError
		require.ErrorAs(t, err, &de)
		require.Equal(t, 503, de.Status)
		require.True(t, de.Retryable)
		short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel2()
		_, err = r.hub.AwaitInvokeResponse(short, id)
		require.ErrorIs(t, err, bridge.ErrNoInvokeResponse)
	})
}

// expectReplies: the bot's buffered replies are recorded in order, _channelId tolerated.
func TestSendExpectReplies(t *testing.T) {
	r := newRig(t, nil)
	r.start("er")
	_, err := r.hub.Receive(context.Background(), bridge.Leg{Channel: "directline", ConversationID: "er"}, &activity.Activity{Type: activity.TypeMessage, Text: "q", DeliveryMode: activity.DeliveryModeExpectReplies, From: &activity.ChannelAccount{ID: "u1"}}, "")

	require.NoError(t, err)
	sent := r.customer.sent()
	require.Len(t, sent, 2)
	require.Equal(t, "first: q", sent[0].Text)
	require.Equal(t, "second", sent[1].Text)
	require.Equal(t, "directline", sent[0].ChannelID)
	require.NotContains(t, sent[0].Extra, "_channelId")
	require.Equal(t, "er|0000001", sent[0].ID, "the log's id, not the bot's")
	require.Equal(t, "er|0000002", sent[1].ID)
	require.Empty(t, r.bot.replyStatuses(), "no Connector calls under expectReplies")
}

// Failures from the bot become DeliveryErrors with the status, retryability and timeout.
func TestSendFailures(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(r *rig)
		a         *activity.Activity
		status    int
		retryable bool
		timeout   bool
	}{
		{name: "500", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.status = 500 }) }, status: 500, retryable: true},
		{name: "503", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.status = 503 }) }, status: 503, retryable: true},
		{name: "429", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.status = 429 }) }, status: 429, retryable: true},
		{name: "400", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.status = 400 }) }, status: 400},
		{name: "404", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.status = 404 }) }, status: 404},
		{name: "timeout", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.delay = 3 * time.Second }) }, timeout: true, retryable: true},
		{name: "oversize answer", setup: func(r *rig) { r.bot.set(func(b *fakeBot) { b.oversize = true }) },
			a: &activity.Activity{Type: activity.TypeInvoke, Name: "x"}, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.DeliveryTimeout = 300 * time.Millisecond })
			conv := r.start("f")
			tc.setup(r)
			a := tc.a
			if a == nil {
				a = &activity.Activity{Type: activity.TypeMessage, Text: "x", From: &activity.ChannelAccount{ID: "u1"}}
			}
			start := time.Now()
			_, err := r.ch.Send(context.Background(), conv.Bot, a)
			var de *bridge.DeliveryError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.status, de.Status)
			require.Equal(t, tc.retryable, de.Retryable)
			require.Equal(t, tc.timeout, de.Timeout)
			require.Equal(t, conv.Bot.Key(), de.Leg)
			require.Less(t, time.Since(start), 3*time.Second, "bounded by DeliveryTimeout")
			require.Empty(t, r.customer.sent())
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := "http://" + ln.Addr().String() + "/api/messages"
		require.NoError(t, ln.Close())
		r := newRig(t, func(c *Config) { c.BotEndpoint = dead })
		conv := r.start("u")
		_, err = r.ch.Send(context.Background(), conv.Bot, &activity.Activity{Type: activity.TypeMessage})
		var de *bridge.DeliveryError
		require.ErrorAs(t, err, &de)
		require.Zero(t, de.Status)
		require.True(t, de.Retryable)
	})
	t.Run("through the hub", func(t *testing.T) {
		r := newRig(t, nil)
		r.start("h")
		r.bot.set(func(b *fakeBot) { b.status = 502 })
		id, err := r.say("h", "x")
		var de *bridge.DeliveryError
		require.ErrorAs(t, err, &de)
		require.Equal(t, 502, de.Status)
		require.Equal(t, "h|0000000", id, "the customer's activity is kept")
	})
}

// Anonymous mode: no Authorization header to the bot, and the bot's calls pass with any token
// or none (botbuilder's isAuthenticationDisabled).
func TestAnonymousMode(t *testing.T) {
	r := newRig(t, func(c *Config) { c.BotAppID, c.BotAppPassword = "", "" })
	r.start("anon")
	_, err := r.say("anon", "hello")
	require.NoError(t, err)
	for _, h := range r.bot.authHeaders() {
		require.Empty(t, h)
	}
	require.Eventually(t, func() bool { return len(r.customer.sent()) == 1 }, 5*time.Second, 10*time.Millisecond, "the echo arrives")
	require.Equal(t, "echo: hello", r.customer.sent()[0].Text)

	for _, tok := range []string{"", "not-a-jwt"} {
		status, body := r.call(http.MethodPost, "/v3/conversations/anon/activities", tok, []byte(`{"type":"message","text":"x"}`))
		require.Equal(t, http.StatusOK, status, "%s", body)
	}
	// No credentials are configured, so the dev token endpoint gives nothing.
	resp, err := http.PostForm(r.url+LoginPath+TokenPath, map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {""}, "client_secret": {""}, "scope": {"x/.default"}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "client_id is required")
}
