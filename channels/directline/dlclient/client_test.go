package dlclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// converse runs a short conversation through bridge A → client → bridge B → echo bot and checks
// that the customer gets the bot's greeting and each reply exactly once, in order.
func converse(t *testing.T, a *bridgeA, b *bridgeB, convID string, texts ...string) {
	t.Helper()
	want := a.cust.texts(convID)
	if len(want) == 0 {
		want = []string{welcome}
	}
	for _, text := range texts {
		a.say(t, convID, text)
		want = append(want, "echo: "+text)
	}
	a.waitTexts(t, convID, len(want))
	require.Equal(t, want, a.cust.texts(convID), "every reply once, in order")
}

func TestCredentialModes(t *testing.T) {
	for _, mode := range []string{"secret", "token", "token endpoint"} {
		t.Run(mode, func(t *testing.T) {
			b := newBridgeB(t, bOptions{})
			cfg := testConfig()
			var cp *copilot
			switch mode {
			case "secret":
				cfg.Domain, cfg.Secret = b.domain, secretB
			case "token":
				cfg.Domain, cfg.Token = b.domain, b.generate(t).Token
			case "token endpoint":
				cp = newCopilot(t, b)
				cfg.TokenEndpoint = cp.tokenEndpoint() // no Domain: it comes from the regional settings
			}
			a := newBridgeA(t, cfg, nil, testLog(t))
			a.start(t, "conv-1")
			converse(t, a, b, "conv-1", "m1", "m2", "m3")

			up := a.upstream(t, "conv-1")
			require.Equal(t, []string{"m1", "m2", "m3"}, b.userMessages(t, up), "each customer message reached the bot once")
			for _, r := range b.log(t, up) {
				if r.From != bridge.RoleCustomer {
					continue
				}
				require.Equal(t, "u1", r.Activity.From.ID, "from is the customer")
				require.Equal(t, "Ursula", r.Activity.From.Name)
				require.Equal(t, "cid-"+r.Activity.Text, r.Activity.ClientActivityID(), "channelData.clientActivityID kept")
				require.JSONEq(t, `{"n":1}`, string(r.Activity.ChannelDataField("custom")), "channelData kept")
			}
			// The bot's replies point at the customer's messages by their bridge ids.
			for _, got := range a.cust.activities("conv-1") {
				if strings.HasPrefix(got.Text, "echo: ") {
					require.NotEmpty(t, got.ReplyToID, "replyToId mapped to the bridge id")
					require.True(t, strings.HasPrefix(got.ReplyToID, "conv-1|"), got.ReplyToID)
				}
			}

			switch mode {
			case "token":
				a.start(t, "conv-2")
				_, err := a.hub.Receive(context.Background(), custLeg("conv-2"), &activity.Activity{Type: activity.TypeMessage, Text: "x", From: &activity.ChannelAccount{ID: "u1"}}, "")
				var de *bridge.DeliveryError
				require.ErrorAs(t, err, &de)
				require.ErrorIs(t, err, ErrTokenInUse, "one token, one conversation")
				require.False(t, de.Retryable)
			case "token endpoint":
				require.Len(t, cp.rec.find(func(r request) bool { return r.Path == "/powervirtualagents/regionalchannelsettings" }), 1, "regional settings read once")
				require.Len(t, cp.rec.find(func(r request) bool { return r.Path == copilotTokenPath }), 1, "one token for one conversation")
				require.Equal(t, cp.firstToken(), b.rec.find(func(r request) bool { return r.Method == "POST" && r.Path == "/v3/directline/conversations" })[0].Auth,
					"the conversation is started with the endpoint's token")
			case "secret":
				gen := b.rec.find(func(r request) bool { return r.Path == "/v3/directline/tokens/generate" })
				require.Len(t, gen, 1, "the secret is exchanged for a token (Health Bot's flow)")
				require.Equal(t, secretB, gen[0].Auth)
				posts := b.rec.find(func(r request) bool { return strings.HasSuffix(r.Path, "/activities") })
				for _, p := range posts {
					require.NotEqual(t, secretB, p.Auth, "activities are posted with the token, not the secret")
				}
			}
		})
	}
}

func TestGreetingEvent(t *testing.T) {
	b := newBridgeB(t, bOptions{})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	cfg.Greeting, cfg.Locale, cfg.Timezone = true, "fr-FR", "Europe/Paris"
	a := newBridgeA(t, cfg, nil, testLog(t))
	a.start(t, "conv-g")
	converse(t, a, b, "conv-g", "bonjour")

	var fromCustomer []*activity.Activity
	for _, r := range b.log(t, a.upstream(t, "conv-g")) {
		if r.From == bridge.RoleCustomer {
			fromCustomer = append(fromCustomer, r.Activity)
		}
	}
	require.Len(t, fromCustomer, 2)
	ev := fromCustomer[0]
	require.Equal(t, activity.TypeEvent, ev.Type, "the greeting event comes first")
	require.Equal(t, "startConversation", ev.Name)
	require.Equal(t, "fr-FR", ev.Locale)
	require.Equal(t, "Europe/Paris", ev.LocalTimezone)
	require.Equal(t, "u1", ev.From.ID)
	require.Equal(t, "bonjour", fromCustomer[1].Text)
	for _, got := range a.cust.activities("conv-g") {
		require.NotEqual(t, activity.TypeEvent, got.Type, "the echo of the greeting event is not relayed")
	}
}

// TestReconnectFromWatermark cuts the socket mid-conversation, has the bot speak while the
// client cannot reconnect, and checks that everything arrives once, in order.
func TestReconnectFromWatermark(t *testing.T) {
	g := &gate{}
	b := newBridgeB(t, bOptions{intercept: g.hold})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, testLog(t))
	a.start(t, "conv-r")
	converse(t, a, b, "conv-r", "m1", "m2")
	up := a.upstream(t, "conv-r")

	for round := 1; round <= 2; round++ {
		info, _ := a.client.Info("conv-r")
		require.True(t, info.Connected)
		last, err := b.hub.Last(context.Background(), up)
		require.NoError(t, err)
		lastWM := strconv.FormatInt(last, 10) // the client has had everything up to here
		waiting, asked := g.waiting.Load(), len(g.watermarks())
		g.close()
		require.Equal(t, 1, b.srv.Drop(up), "the upstream cuts the socket")
		require.Eventually(t, func() bool { return g.waiting.Load() > waiting }, waitLong, 10*time.Millisecond, "the client asks for a new streamUrl")
		want := a.cust.texts("conv-r")
		for i := range 3 {
			text := fmt.Sprintf("while away %d.%d", round, i)
			b.botSays(t, up, text)
			want = append(want, text)
		}
		g.open()
		a.waitTexts(t, "conv-r", len(want))
		require.Equal(t, lastWM, g.watermarks()[asked], "the reconnect asks from the last watermark")
		a.say(t, "conv-r", fmt.Sprintf("back %d", round))
		want = append(want, fmt.Sprintf("echo: back %d", round))
		a.waitTexts(t, "conv-r", len(want))
		require.Equal(t, want, a.cust.texts("conv-r"), "nothing lost, nothing duplicated")
		require.Eventually(t, func() bool { info, _ := a.client.Info("conv-r"); return info.Connected }, waitLong, 10*time.Millisecond, "connected again")
	}
}

// TestTokenExpiresMidConversation runs a conversation on 4-second tokens (Copilot token
// endpoint mode, where the client has no secret to fall back on): the client refreshes them,
// and after the first token has expired a dropped socket reconnects and nothing is lost.
func TestTokenExpiresMidConversation(t *testing.T) {
	g := &gate{}
	b := newBridgeB(t, bOptions{tokenTTL: 4 * time.Second, intercept: g.hold})
	cp := newCopilot(t, b)
	cfg := testConfig()
	cfg.TokenEndpoint = cp.tokenEndpoint()
	a := newBridgeA(t, cfg, nil, testLog(t))
	a.start(t, "conv-t")
	converse(t, a, b, "conv-t", "m1")
	up := a.upstream(t, "conv-t")

	first := cp.firstToken()
	require.Eventually(t, func() bool {
		// Asked of the server's routes directly, so that the recorder sees only the client.
		req := httptest.NewRequest(http.MethodPost, b.domain+"/tokens/refresh", nil)
		req.Header.Set("Authorization", "Bearer "+first)
		rec := httptest.NewRecorder()
		b.mux.ServeHTTP(rec, req)
		return rec.Code == http.StatusForbidden
	}, 15*time.Second, 10*time.Millisecond, "the first token expires")
	refreshes := b.rec.find(func(r request) bool { return r.Path == "/v3/directline/tokens/refresh" })
	require.NotEmpty(t, refreshes, "the client refreshed its token before it expired")
	require.Equal(t, first, refreshes[0].Auth)
	for _, r := range refreshes {
		require.Equal(t, http.StatusOK, r.Status, "no refresh came too late")
	}

	converse(t, a, b, "conv-t", "m2") // posted with a refreshed token
	waiting := g.waiting.Load()
	g.close()
	require.Equal(t, 1, b.srv.Drop(up))
	require.Eventually(t, func() bool { return g.waiting.Load() > waiting }, waitLong, 10*time.Millisecond, "the client reconnects")
	want := append(a.cust.texts("conv-t"), "after expiry")
	b.botSays(t, up, "after expiry")
	g.open()
	a.waitTexts(t, "conv-t", len(want))
	converse(t, a, b, "conv-t", "m3")
	require.Equal(t, append(want, "echo: m3"), a.cust.texts("conv-t"))
	for _, r := range b.rec.find(func(r request) bool { return isReconnectPath(r.Path) }) {
		require.Equal(t, http.StatusOK, r.Status, "the reconnect used a live token")
	}
	require.Len(t, cp.rec.find(func(r request) bool { return r.Path == copilotTokenPath }), 1, "still the same upstream conversation")
}

func isReconnectPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/v3/directline/conversations/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// refuseUpgrade answers the stream with 400, as a proxy without websocket support does.
func refuseUpgrade(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasSuffix(r.URL.Path, "/stream") {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"error":{"code":"BadArgument","message":"websockets are not supported here"}}`))
	return true
}

// TestPollingFallback refuses the websocket upgrade: auto mode polls instead.
func TestPollingFallback(t *testing.T) {
	for _, mode := range []Mode{ModeAuto, ModePolling} {
		t.Run(string(mode), func(t *testing.T) {
			b := newBridgeB(t, bOptions{intercept: refuseUpgrade})
			cfg := testConfig()
			cfg.Domain, cfg.Secret, cfg.Mode = b.domain, secretB, mode
			a := newBridgeA(t, cfg, nil, testLog(t))
			a.start(t, "conv-p")
			converse(t, a, b, "conv-p", "m1", "m2", "m3")
			info, _ := a.client.Info("conv-p")
			require.True(t, info.Polling)
			require.False(t, info.Connected)
			up := a.upstream(t, "conv-p")
			b.botSays(t, up, "proactive")
			a.waitText(t, "conv-p", "proactive")
			converse(t, a, b, "conv-p", "m4")
			require.Equal(t, []string{welcome, "echo: m1", "echo: m2", "echo: m3", "proactive", "echo: m4"}, a.cust.texts("conv-p"))
			streams := 0
			if mode == ModeAuto {
				streams = 1 // one refused upgrade, then polling
			}
			require.Len(t, b.rec.find(func(r request) bool { return strings.HasSuffix(r.Path, "/stream") }), streams)
			require.NotEmpty(t, b.rec.find(func(r request) bool { return strings.HasSuffix(r.Path, "/activities") && r.Method == http.MethodGet }))
		})
	}
	t.Run("websocket mode keeps trying the stream", func(t *testing.T) {
		b := newBridgeB(t, bOptions{intercept: refuseUpgrade})
		cfg := testConfig()
		cfg.Domain, cfg.Secret, cfg.Mode = b.domain, secretB, ModeWebSocket
		a := newBridgeA(t, cfg, nil, testLog(t))
		a.start(t, "conv-w")
		a.say(t, "conv-w", "m1")
		require.Eventually(t, func() bool {
			return len(b.rec.find(func(r request) bool { return strings.HasSuffix(r.Path, "/stream") })) >= 3
		}, waitLong, 10*time.Millisecond, "the stream is retried")
		info, _ := a.client.Info("conv-w")
		require.False(t, info.Polling)
		require.Empty(t, b.rec.find(func(r request) bool { return strings.HasSuffix(r.Path, "/activities") && r.Method == http.MethodGet }))
	})
}

// TestRetryAfter answers the first start and the first message with 429 Retry-After: 1.
func TestRetryAfter(t *testing.T) {
	var mu sync.Mutex
	throttled, at := map[string]bool{}, map[string]time.Time{}
	throttle := func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		key := ""
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v3/directline/conversations":
			key = "start"
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/activities"):
			key = "post"
		default:
			return false
		}
		if throttled[key] {
			return false
		}
		throttled[key], at[key] = true, time.Now()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"Throttled","message":"slow down"}}`))
		return true
	}
	b := newBridgeB(t, bOptions{intercept: throttle})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, testLog(t))
	a.start(t, "conv-429")
	converse(t, a, b, "conv-429", "m1")
	mu.Lock()
	defer mu.Unlock()
	for key, path := range map[string]string{"start": "/v3/directline/conversations", "post": "/activities"} {
		reqs := b.rec.find(func(r request) bool { return r.Method == http.MethodPost && strings.HasSuffix(r.Path, path) })
		require.GreaterOrEqual(t, len(reqs), 2, key)
		require.Equal(t, http.StatusTooManyRequests, reqs[0].Status, key)
		require.Less(t, reqs[1].Status, 300, key)
		require.GreaterOrEqual(t, reqs[1].At.Sub(at[key]), time.Second, "%s waited for Retry-After", key)
	}
	require.Equal(t, []string{"m1"}, b.userMessages(t, a.upstream(t, "conv-429")), "posted once")
}

// TestBadGatewayNotRetried lets the activity reach the bot, then answers 502 or 504, as Direct
// Line does when the bot fails or is slow: the client must not post it again.
func TestBadGatewayNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var b *bridgeB
			fail := func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/activities") || !strings.Contains(readBody(r), `"boom"`) {
					return false
				}
				b.mux.ServeHTTP(httptest.NewRecorder(), r) // delivered…
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status) // …but the answer says the bot failed
				_, _ = fmt.Fprintf(w, `{"error":{"code":"BotError","message":"Failed to send activity: bot returned an error"},"httpStatusCode":500}`)
				return true
			}
			b = newBridgeB(t, bOptions{intercept: fail})
			cfg := testConfig()
			cfg.Domain, cfg.Secret = b.domain, secretB
			a := newBridgeA(t, cfg, nil, testLog(t))
			a.start(t, "conv-5xx")
			converse(t, a, b, "conv-5xx", "m1")

			_, err := a.hub.Receive(context.Background(), custLeg("conv-5xx"), &activity.Activity{Type: activity.TypeMessage, Text: "boom", From: &activity.ChannelAccount{ID: "u1"}}, "")
			var de *bridge.DeliveryError
			require.ErrorAs(t, err, &de)
			require.Equal(t, status, de.Status)
			require.False(t, de.Retryable, "it may have been delivered")
			require.Equal(t, status == http.StatusGatewayTimeout, de.Timeout)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, "BotError", ae.Code)

			a.waitText(t, "conv-5xx", "echo: boom") // the bot did get it
			converse(t, a, b, "conv-5xx", "m2")
			boom := b.rec.find(func(r request) bool { return strings.Contains(r.Body, `"boom"`) })
			require.Len(t, boom, 1, "posted once, not retried")
			require.Equal(t, []string{"m1", "boom", "m2"}, b.userMessages(t, a.upstream(t, "conv-5xx")))
		})
	}
}

func readBody(r *http.Request) string {
	if r.Body == nil {
		return ""
	}
	var sb strings.Builder
	_, _ = io.Copy(&sb, r.Body)
	r.Body = io.NopCloser(strings.NewReader(sb.String()))
	return sb.String()
}

// TestResumeAfterRestart stops the client, lets the bot speak, and starts a new client over
// the same stores: it resumes the upstream conversation from the stored watermark.
func TestResumeAfterRestart(t *testing.T) {
	b := newBridgeB(t, bOptions{})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	cfg.Store = NewMemoryStore()
	hubStore := memory.New()
	a := newBridgeA(t, cfg, hubStore, testLog(t))
	a.start(t, "conv-s")
	converse(t, a, b, "conv-s", "m1", "m2")
	up := a.upstream(t, "conv-s")
	require.NoError(t, a.client.Close())

	// As if the bridge had crashed after taking the bot's activities but before it stored the
	// frame's watermark: the replay starts earlier, and the ids it took are skipped.
	st, ok, err := cfg.Store.Load(context.Background(), "conv-s")
	require.NoError(t, err)
	require.True(t, ok)
	require.NotEmpty(t, st.Watermark)
	require.NotEmpty(t, st.Token)
	st.Watermark, st.Delivered = "", nil
	for _, r := range b.log(t, up) {
		if r.From == bridge.RoleBot {
			st.Delivered = append(st.Delivered, r.Activity.ID)
		}
	}
	require.Len(t, st.Delivered, 3)
	require.NoError(t, cfg.Store.Save(context.Background(), "conv-s", st))

	b.botSays(t, up, "while the bridge was down")
	a2 := newBridgeA(t, cfg, hubStore, testLog(t))
	conv, err := a2.hub.Conversation(context.Background(), "conv-s")
	require.NoError(t, err)
	require.NoError(t, a2.client.Resume(context.Background(), conv.Bot))
	info, ok := a2.client.Info("conv-s")
	require.True(t, ok)
	require.Equal(t, up, info.ConversationID, "the same upstream conversation")
	a2.waitTexts(t, "conv-s", 1)
	a2.say(t, "conv-s", "m3")
	a2.waitTexts(t, "conv-s", 2)
	require.Equal(t, []string{"while the bridge was down", "echo: m3"}, a2.cust.texts("conv-s"), "only what is new, once")

	require.NoError(t, a2.client.Resume(context.Background(), bridge.Leg{Channel: ChannelName, ConversationID: "unknown"}), "nothing stored: nothing to do")
	_, ok = a2.client.Info("unknown")
	require.False(t, ok)
}

// TestEndOfConversation forgets the upstream conversation when the customer ends it.
func TestEndOfConversation(t *testing.T) {
	b := newBridgeB(t, bOptions{})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, testLog(t))
	a.start(t, "conv-e")
	converse(t, a, b, "conv-e", "m1")
	up := a.upstream(t, "conv-e")
	_, err := a.hub.Receive(context.Background(), custLeg("conv-e"), &activity.Activity{Type: activity.TypeEndOfConversation, From: &activity.ChannelAccount{ID: "u1"}}, "")
	require.NoError(t, err)
	_, ok := a.client.Info("conv-e")
	require.False(t, ok, "the session is gone")
	_, ok, err = a.client.cfg.Store.Load(context.Background(), "conv-e")
	require.NoError(t, err)
	require.False(t, ok, "its state is forgotten")
	var types []string
	for _, r := range b.log(t, up) {
		if r.From == bridge.RoleCustomer {
			types = append(types, r.Activity.Type)
		}
	}
	require.Equal(t, []string{"message", "endOfConversation"}, types)
}

// TestCloseStopsEverything checks that Close leaves no goroutine behind.
func TestCloseStopsEverything(t *testing.T) {
	g := &gate{}
	b := newBridgeB(t, bOptions{intercept: g.hold})
	polling := newBridgeB(t, bOptions{intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/stream") {
			w.WriteHeader(http.StatusBadRequest)
			return true
		}
		return false
	}})
	base := goroutines()
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, testLog(t))
	cfgP := testConfig()
	cfgP.Domain, cfgP.Secret, cfgP.Name = polling.domain, secretB, "dlclient"
	ap := newBridgeA(t, cfgP, nil, testLog(t))
	for i := range 3 {
		id := fmt.Sprintf("conv-%d", i)
		a.start(t, id)
		converse(t, a, b, id, "m1")
	}
	ap.start(t, "conv-p")
	converse(t, ap, polling, "conv-p", "m1")
	// One session is stuck reconnecting: its GET is held by the gate.
	g.close()
	b.srv.Drop(a.upstream(t, "conv-0"))
	require.Eventually(t, func() bool { return g.waiting.Load() > 0 }, waitLong, 10*time.Millisecond, "a reconnect is in flight")

	require.NoError(t, a.client.Close())
	require.NoError(t, ap.client.Close())
	require.NoError(t, a.client.Close(), "Close twice is fine")
	g.open()
	_, err := a.client.Send(context.Background(), bridge.Leg{Channel: ChannelName, ConversationID: "conv-9"}, &activity.Activity{Type: "message"})
	require.ErrorIs(t, err, ErrClosed)
	// Polled here, not with require.Eventually, whose condition runs in goroutines of its own.
	deadline := time.Now().Add(waitLong)
	for goroutines() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, goroutines(), base, "goroutines back to the count before the clients started")
}

func goroutines() int { return runtime.NumGoroutine() }
