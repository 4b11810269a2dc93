package botframework

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/internal/connector"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const (
	testAppID    = "11111111-2222-3333-4444-555555555555"
	testPassword = "s3cret-password-not-logged"
)

// recorder is the customer-side channel: it records what the Hub relays to the customer.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []*activity.Activity
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, a)
	return a.ID, nil
}

func (r *recorder) sent() []*activity.Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// rig is a bridge (Hub + memory store + this channel + a recording customer channel) serving
// on 127.0.0.1, and a fake bot serving on another port.
type rig struct {
	t        *testing.T
	hub      *bridge.Hub
	ch       *Channel
	url      string // the bridge's public URL
	customer *recorder
	bot      *fakeBot
	botURL   string
	logs     *testutil.Buffer
}

// newRig starts a rig. The bot is authenticated with testAppID unless mod clears BotAppID.
func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	bridgeMux := http.NewServeMux()
	bridgeSrv := httptest.NewUnstartedServer(bridgeMux)
	bot := newFakeBot(t)
	botSrv := httptest.NewUnstartedServer(bot)
	botSrv.Start()
	t.Cleanup(botSrv.Close)
	r := buildRig(t, bridgeMux, bridgeSrv, botSrv.URL+"/api/messages", mod)
	r.bot = bot
	bot.configure(r.url, r.ch.cfg.BotAppID, r.ch.cfg.BotAppPassword)
	return r
}

// buildRig makes the Hub and the channel for the unstarted bridge server, and starts it.
func buildRig(t *testing.T, bridgeMux *http.ServeMux, bridgeSrv *httptest.Server, botURL string, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, customer: &recorder{name: "directline"}, logs: &testutil.Buffer{}, botURL: botURL}
	r.url = "http://" + bridgeSrv.Listener.Addr().String()
	cfg := Config{PublicURL: r.url, BotEndpoint: botURL, BotAppID: testAppID, BotAppPassword: testPassword, DeliveryTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	log := zerolog.New(zerolog.MultiLevelWriter(r.logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel)
	r.hub = bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: 10 * time.Second}, log)
	t.Cleanup(r.hub.Close)
	r.hub.Register(r.customer)
	ch, err := New(cfg, r.hub, log)
	require.NoError(t, err)
	r.ch = ch
	r.hub.Register(ch)
	ch.Register(bridgeMux)
	bridgeSrv.Start()
	t.Cleanup(func() {
		bridgeSrv.Close()
		_ = ch.Close()
	})
	return r
}

// start opens a conversation with the customer leg on "directline".
func (r *rig) start(convID string) *bridge.Conversation {
	r.t.Helper()
	c, _, err := r.hub.Start(context.Background(), convID, bridge.Leg{Channel: "directline", ConversationID: convID})
	require.NoError(r.t, err)
	return c
}

// say sends a customer message through the Hub and returns its id and the Hub's error.
func (r *rig) say(convID, text string) (string, error) {
	return r.hub.Receive(context.Background(), bridge.Leg{Channel: "directline", ConversationID: convID}, &activity.Activity{Type: activity.TypeMessage, Text: text, From: &activity.ChannelAccount{ID: "u1", Name: "User"}}, "")

}

// log returns the conversation's log.
func (r *rig) log(convID string) []bridge.Record {
	r.t.Helper()
	recs, err := r.hub.Since(context.Background(), convID, -1, 0)
	require.NoError(r.t, err)
	return recs
}

// devToken gets a token from the bridge's dev token endpoint.
func (r *rig) devToken() string {
	r.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {testAppID}, "client_secret": {testPassword}, "scope": {DefaultIssuer + "/.default"}}
	resp, err := http.PostForm(r.url+LoginPath+TokenPath, form)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	require.Equal(r.t, http.StatusOK, resp.StatusCode)
	var tr tokenResponse
	require.NoError(r.t, json.NewDecoder(resp.Body).Decode(&tr))
	return tr.AccessToken
}

// call makes a Connector API call with a path sent exactly as given (escaping included) and
// returns the status and body.
func (r *rig) call(method, rawPath, token string, body []byte) (int, []byte) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.url, bytes.NewReader(body))
	require.NoError(r.t, err)
	req.URL.Opaque = rawPath // sent verbatim as the request target
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, b
}

// requireError checks an ErrorResponse body.
func requireError(t *testing.T, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	require.Equal(t, wantStatus, status, "body: %s", body)
	var e errorBody
	require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
	require.Equal(t, wantCode, e.Error.Code, "body: %s", body)
	require.NotEmpty(t, e.Error.Message)
}

// otherKey is an RSA key the bridge does not know, for forged tokens.
var otherKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// signWith signs claims with key under kid.
func signWith(t *testing.T, claims jwt.MapClaims, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	s, err := sign(claims, key, kid)
	require.NoError(t, err)
	return s
}

// botClaims are the claims of a good dev token for the test bot.
func botClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": DefaultIssuer, "aud": DefaultIssuer, "appid": testAppID, "azp": testAppID, "ver": "1.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// errorBody is the Connector ErrorResponse.
type errorBody = connector.ErrorBody
