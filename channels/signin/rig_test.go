package signin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/internal/atrest"
	"github.com/bfbridge/bfbridge/internal/connector"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const (
	testApp    = "app-1"
	otherApp   = "app-2"
	testConn   = "idp"
	ssoConn    = "sso"
	oboConn    = "entra"
	exchURL    = "api://bridge-test/access"
	clientID   = "bridge-client"
	clientPass = "client-secret-never-logged"
)

// recorder is a channel that records what the Hub sends it: the customer's channel and the
// bot's (named "botframework", as the token service looks bot legs up by that name).
type recorder struct {
	name string
	mu   sync.Mutex
	got  []*activity.Activity
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, a.Clone())
	return a.ID, nil
}

func (r *recorder) sent() []*activity.Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*activity.Activity(nil), r.got...)
}

// rig is a Hub on a memory store with a recording customer channel and bot channel, the token
// service on a loopback server, and a fake OpenID provider.
type rig struct {
	t     *testing.T
	hub   *bridge.Hub
	store *memory.Store
	svc   *Service
	url   string
	idp   *fakeIdP
	bot   *recorder
	cust  *recorder
	logs  *testutil.Buffer
}

// testAuth stands for the Connector's check of the bot's token: "Bearer ok:<app>".
func testAuth(r *http.Request) (string, error) {
	app, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ok:")
	if !ok {
		return "", connector.New(http.StatusUnauthorized, "Unauthorized", "unauthorized: no token")
	}
	return app, nil
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, store: memory.New(), bot: &recorder{name: "botframework"}, cust: &recorder{name: "dl"}, logs: &testutil.Buffer{}}
	log := zerolog.New(r.logs).Level(zerolog.DebugLevel)
	r.hub = bridge.NewHub(r.store, bridge.HubConfig{}, log)
	r.hub.Register(r.bot)
	r.hub.Register(r.cust)
	r.idp = newFakeIdP(t, clientID, clientPass)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	t.Setenv("TEST_SIGNIN_SECRET", clientPass)
	yes := true
	sec := Section{Connections: []Connection{
		{Name: testConn, Provider: "oidc", Issuer: r.idp.issuer(), ClientID: clientID, ClientSecretEnv: "TEST_SIGNIN_SECRET", Scopes: []string{"profile"}},
		{Name: ssoConn, Provider: "oidc", Issuer: r.idp.issuer(), ClientID: clientID, ClientSecretEnv: "TEST_SIGNIN_SECRET", TokenExchangeURL: exchURL},
		{Name: oboConn, Provider: "oidc", Issuer: r.idp.issuer(), ClientID: clientID, ClientSecretEnv: "TEST_SIGNIN_SECRET", TokenExchangeURL: exchURL, OnBehalfOf: &yes, Scopes: []string{"https://graph.example/.default"}},
	}}
	require.NoError(t, sec.Validate())
	key, err := atrest.NewKey()
	require.NoError(t, err)
	r.svc, err = New(Config{Section: sec.withDefaults(func(k string) string { return map[string]string{"TEST_SIGNIN_SECRET": clientPass}[k] }),
		PublicURL: srv.URL, BotChannel: "botframework", Auth: testAuth, Key: key}, r.hub, log)
	require.NoError(t, err)
	r.svc.Register(mux)
	return r
}

// start opens a conversation of user with the bot; the bot knows it by the same id.
func (r *rig) start(conv, user string) {
	r.t.Helper()
	_, _, err := r.hub.Start(context.Background(), conv, bridge.Leg{Channel: "dl", ConversationID: conv, User: activity.ChannelAccount{ID: user}})
	require.NoError(r.t, err)
}

// state is the bot's state for conv/user, as botbuilder-js encodes it (camelCase).
func state(conn, conv, user, app string) string {
	b, _ := json.Marshal(map[string]any{
		"connectionName": conn, "msAppId": app,
		"conversation": map[string]any{
			"activityId": "act-1", "user": map[string]string{"id": user}, "bot": map[string]string{"id": "bot"},
			"conversation": map[string]string{"id": conv}, "channelId": "directline", "serviceUrl": "http://bridge/",
		},
		"relatesTo": nil,
	})
	return base64.StdEncoding.EncodeToString(b)
}

// call makes a token service call as app ("" for none) and returns the status and body.
func (r *rig) call(method, path string, q url.Values, body, app string) (int, string, http.Header) {
	r.t.Helper()
	u := r.url + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(r.t, err)
	if app != "" {
		req.Header.Set("Authorization", "Bearer ok:"+app)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, string(b), resp.Header
}

// signInLink asks for a sign-in link as the bot does.
func (r *rig) signInLink(conn, conv, user string) string {
	r.t.Helper()
	status, body, h := r.call("GET", "/api/botsignin/GetSignInUrl", url.Values{"state": {state(conn, conv, user, testApp)}}, "", testApp)
	require.Equal(r.t, http.StatusOK, status, body)
	require.Contains(r.t, h.Get("Content-Type"), "text/html")
	return body
}

var codeRE = regexp.MustCompile(`id="code">(\d{6})<`)

// follow opens link in a browser (a cookie jar, following redirects through the provider) and
// returns the final page's status and text.
func (r *rig) follow(link string, cookies ...*http.Cookie) (int, string) {
	r.t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(r.t, err)
	u, _ := url.Parse(r.url)
	jar.SetCookies(u, cookies)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(link)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, string(b)
}

// magicCode signs user in through the link and returns the code the page shows.
func (r *rig) magicCode(conn, conv, user string) string {
	r.t.Helper()
	status, page := r.follow(r.signInLink(conn, conv, user))
	require.Equal(r.t, http.StatusOK, status, page)
	m := codeRE.FindStringSubmatch(page)
	require.NotNil(r.t, m, page)
	return m[1]
}

func (r *rig) getToken(app, conn, user, code string) (int, string) {
	q := url.Values{"userId": {user}, "connectionName": {conn}, "channelId": {"directline"}}
	if code != "" {
		q.Set("code", code)
	}
	status, body, _ := r.call("GET", "/api/usertoken/GetToken", q, "", app)
	return status, body
}
