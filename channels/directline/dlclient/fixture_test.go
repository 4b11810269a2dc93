package dlclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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

const (
	secretB  = "bridge-b-secret-0123456789"
	welcome  = "Welcome from B"
	waitLong = 15 * time.Second
)

// testLog is a logger for the fixtures: silent unless DLCLIENT_TEST_LOG is set.
func testLog(t testing.TB) zerolog.Logger {
	if os.Getenv("DLCLIENT_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// request is one HTTP request that reached bridge B (or the fake Copilot endpoint).
type request struct {
	Method, Path, Query, Auth string
	Status                    int
	At                        time.Time
	Body                      string
}

// recorder keeps the requests a server saw.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (rc *recorder) add(r request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reqs = append(rc.reqs, r)
}

// find returns the recorded requests that match.
func (rc *recorder) find(match func(request) bool) []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []request
	for _, r := range rc.reqs {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack lets the websocket upgrader take the connection: 101 Switching Protocols.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.status = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// record wraps h: every request is recorded, with its body and credential, after intercept
// (which may answer it itself) or h has answered.
func record(rc *recorder, intercept func(w http.ResponseWriter, r *http.Request) bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sw := &statusWriter{ResponseWriter: w}
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if t := r.URL.Query().Get("t"); t != "" {
			auth = t
		}
		if intercept == nil || !intercept(sw, r) {
			h.ServeHTTP(sw, r)
		}
		rc.add(request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: auth, Status: sw.status, At: time.Now(), Body: string(body)})
	})
}

// bridgeB is the far side: our Direct Line server with the in-process echo bot behind it.
type bridgeB struct {
	hub    *bridge.Hub
	mux    *http.ServeMux // the server's routes, behind the recorder
	srv    *directline.Server
	ts     *httptest.Server
	domain string
	rec    *recorder
}

type bOptions struct {
	tokenTTL  time.Duration
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func init() {
	if os.Getenv("DLCLIENT_TEST_LOG") != "" {
		zerolog.TimeFieldFormat = "15:04:05.000"
	}
}

func newBridgeB(t testing.TB, o bOptions) *bridgeB {
	t.Helper()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: localbot.ChannelName, DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	hub.Register(localbot.New(hub, welcome))
	mux := http.NewServeMux()
	b := &bridgeB{hub: hub, mux: mux, rec: &recorder{}}
	b.ts = httptest.NewServer(record(b.rec, o.intercept, mux))
	t.Cleanup(b.ts.Close)
	srv, err := directline.New(directline.Config{PublicURL: b.ts.URL, Secret: secretB, TokenTTL: o.tokenTTL, KeepAlive: 500 * time.Millisecond}, hub, zerolog.Nop())
	require.NoError(t, err)
	hub.Register(srv)
	srv.Register(mux)
	b.srv, b.domain = srv, b.ts.URL+"/v3/directline"
	return b
}

// generate gets a token for a new conversation from bridge B, with its secret.
func (b *bridgeB) generate(t testing.TB) conversation {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.domain+"/tokens/generate", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secretB)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var c conversation
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c
}

// log returns bridge B's log of an upstream conversation.
func (b *bridgeB) log(t testing.TB, upID string) []bridge.Record {
	t.Helper()
	recs, err := b.hub.Since(context.Background(), upID, -1, 10000)
	require.NoError(t, err)
	return recs
}

// userMessages returns the texts of the messages the customer (bridge A) posted to B.
func (b *bridgeB) userMessages(t testing.TB, upID string) []string {
	var out []string
	for _, r := range b.log(t, upID) {
		if r.From == bridge.RoleCustomer && r.Activity.Type == activity.TypeMessage {
			out = append(out, r.Activity.Text)
		}
	}
	return out
}

// botSays makes the bot behind B send a message in an upstream conversation, as a proactive
// bot does.
func (b *bridgeB) botSays(t testing.TB, upID, text string) {
	t.Helper()
	conv, err := b.hub.Conversation(context.Background(), upID)
	require.NoError(t, err)
	bot := conv.Bot.Bot
	_, err = b.hub.Receive(context.Background(), conv.Bot, &activity.Activity{Type: activity.TypeMessage, Text: text, From: &bot}, "")
	require.NoError(t, err)
}

// copilot is a fake Copilot Studio environment: its token endpoint and regional channel
// settings, in the shapes of reference/directline.md §8 (GET …/botsbyschema/<schema>/directline/token
// → {token, expires_in, conversationId}; GET …/regionalchannelsettings → channelUrlsById.directline).
// Its tokens come from bridge B's /tokens/generate, as Copilot's come from Direct Line's.
type copilot struct {
	ts     *httptest.Server
	rec    *recorder
	mu     sync.Mutex
	tokens []string
}

const copilotTokenPath = "/powervirtualagents/botsbyschema/cr0a1_assistant/directline/token"

func newCopilot(t testing.TB, b *bridgeB) *copilot {
	t.Helper()
	cp := &copilot{rec: &recorder{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+copilotTokenPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api-version") != "2022-03-01-preview" {
			http.Error(w, `{"error":{"code":"BadArgument","message":"api-version"}}`, http.StatusBadRequest)
			return
		}
		c := b.generate(t)
		cp.mu.Lock()
		cp.tokens = append(cp.tokens, c.Token)
		cp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": c.Token, "expires_in": c.ExpiresIn, "conversationId": c.ConversationID})
	})
	mux.HandleFunc("GET /powervirtualagents/regionalchannelsettings", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"channelUrlsById": map[string]string{"directline": b.ts.URL + "/", "webchat": b.ts.URL + "/webchat"}})
	})
	cp.ts = httptest.NewServer(record(cp.rec, nil, mux))
	t.Cleanup(cp.ts.Close)
	return cp
}

func (cp *copilot) tokenEndpoint() string {
	return cp.ts.URL + copilotTokenPath + "?api-version=2022-03-01-preview"
}

func (cp *copilot) firstToken() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.tokens) == 0 {
		return ""
	}
	return cp.tokens[0]
}

// customer is the customer's channel in bridge A: it records what the Hub relays to it.
type customer struct {
	mu  sync.Mutex
	got map[string][]*activity.Activity // by bridge conversation id
}

func (c *customer) Name() string { return "customer" }

func (c *customer) Send(_ context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string][]*activity.Activity{}
	}
	c.got[to.ConversationID] = append(c.got[to.ConversationID], a.Clone())
	return a.ID, nil
}

func (c *customer) activities(convID string) []*activity.Activity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*activity.Activity(nil), c.got[convID]...)
}

// texts returns the texts of the messages the customer got in a conversation, in order.
func (c *customer) texts(convID string) []string {
	var out []string
	for _, a := range c.activities(convID) {
		if a.Type == activity.TypeMessage {
			out = append(out, a.Text)
		}
	}
	return out
}

// bridgeA is the near side: a Hub whose bot leg is the client under test, and a customer.
type bridgeA struct {
	hub    *bridge.Hub
	client *Client
	cust   *customer
}

// testConfig is a client configuration with short waits, for tests.
func testConfig() Config {
	return Config{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, KeepAlive: 5 * time.Second, PollInterval: 200 * time.Millisecond}
}

func newBridgeA(t testing.TB, cfg Config, store bridge.Store, log zerolog.Logger) *bridgeA {
	t.Helper()
	if store == nil {
		store = memory.New()
	}
	hub := bridge.NewHub(store, bridge.HubConfig{BotChannel: ChannelName, DeliveryTimeout: 10 * time.Second}, log)
	t.Cleanup(hub.Close)
	c, err := New(cfg, hub, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	a := &bridgeA{hub: hub, client: c, cust: &customer{}}
	hub.Register(c)
	hub.Register(a.cust)
	return a
}

func custLeg(convID string) bridge.Leg {
	return bridge.Leg{Channel: "customer", ConversationID: convID, User: activity.ChannelAccount{ID: "u1", Name: "Ursula"}}
}

// start opens a bridge conversation for the customer.
func (a *bridgeA) start(t testing.TB, convID string) {
	t.Helper()
	_, created, err := a.hub.Start(context.Background(), convID, custLeg(convID))
	require.NoError(t, err)
	require.True(t, created)
}

// say sends a customer message through bridge A and returns its bridge id.
func (a *bridgeA) say(t testing.TB, convID, text string) string {
	t.Helper()
	id, err := a.hub.Receive(context.Background(), custLeg(convID), &activity.Activity{
		Type: activity.TypeMessage, Text: text, From: &activity.ChannelAccount{ID: "u1", Name: "Ursula"},
		ChannelData: json.RawMessage(`{"clientActivityID":"cid-` + text + `","custom":{"n":1}}`),
	}, "")

	require.NoError(t, err)
	return id
}

// waitTexts waits until the customer has n messages in the conversation, then returns them.
func (a *bridgeA) waitTexts(t testing.TB, convID string, n int) []string {
	t.Helper()
	require.Eventually(t, func() bool { return len(a.cust.texts(convID)) >= n }, waitLong, 10*time.Millisecond, "the customer gets the bot's messages")
	return a.cust.texts(convID)
}

// waitText waits until the customer's last message in the conversation is text.
func (a *bridgeA) waitText(t testing.TB, convID, text string) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := a.cust.texts(convID)
		return len(got) > 0 && got[len(got)-1] == text
	}, waitLong, 10*time.Millisecond, "the customer gets "+text)
}

// upstream returns the upstream conversation id of a bridge conversation.
func (a *bridgeA) upstream(t testing.TB, convID string) string {
	t.Helper()
	var info Info
	require.Eventually(t, func() bool {
		var ok bool
		info, ok = a.client.Info(convID)
		return ok
	}, waitLong, 10*time.Millisecond, "the upstream conversation is open")
	return info.ConversationID
}

// gate holds GET /conversations/{id} (reconnect) requests while it is shut.
type gate struct {
	mu      sync.Mutex
	shut    chan struct{} // nil: open
	waiting atomic.Int32
	queries []string
}

func isReconnect(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v3/directline/conversations/")
	return ok && r.Method == http.MethodGet && rest != "" && !strings.Contains(rest, "/")
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// hold is an intercept: it holds reconnects while the gate is shut, and never answers itself.
func (g *gate) hold(_ http.ResponseWriter, r *http.Request) bool {
	if !isReconnect(r) {
		return false
	}
	g.mu.Lock()
	ch := g.shut
	g.queries = append(g.queries, r.URL.Query().Get("watermark"))
	g.mu.Unlock()
	if ch != nil {
		g.waiting.Add(1)
		select {
		case <-ch:
		case <-r.Context().Done():
		}
	}
	return false
}

func (g *gate) watermarks() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.queries...)
}
