package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/signin"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// Sign-in through the bridge with real peers (reference/signin.md §6): a botbuilder-js bot with
// OAuthPrompt (bots/signin-bot.js) whose OAuthUrl is the bridge, the npm oidc-provider as the
// connection's OpenID provider (peers/oidc-provider.mjs), and botframework-directlinejs as the
// customer (clients/dljs-signin.js). The test is the customer's browser: it follows the card's
// link through the provider's login and consent forms with a cookie jar.

const (
	signinAppID    = "22222222-3333-4444-5555-666666666666"
	signinPassword = "bot-password-for-the-signin-test"
	idpClientID    = "bridge"
	idpSecret      = "idp-client-secret-for-the-signin-test"
	idpSecretEnv   = "BFBRIDGE_TEST_SIGNIN_IDP_SECRET"
)

type signinRig struct {
	t      *testing.T
	url    string
	secret string
	idp    string
	app    *app.App
	bot    *testutil.NodeProc
	logs   *testutil.Buffer
	data   string
}

func startSignIn(t *testing.T) *signinRig {
	t.Helper()
	dir := testutil.InteropDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &signinRig{t: t, url: "http://" + ln.Addr().String(), secret: "signin-interop-secret-0123456789", logs: &testutil.Buffer{}, data: t.TempDir()}

	idp := testutil.StartNode(t, dir, "peers/oidc-provider.mjs", []string{
		"PORT=0", "CLIENT_ID=" + idpClientID, "CLIENT_SECRET=" + idpSecret, "REDIRECT_URI=" + r.url + signin.RedirectPath,
	})
	r.idp = "http://127.0.0.1:" + idp.Listening(t, 60*time.Second)

	meta := r.url + botframework.OpenIDMetadataPath
	r.bot = testutil.StartNode(t, dir, "bots/signin-bot.js", []string{
		"PORT=0", "EXIT_ON_STDIN_END=1", "CONNECTION_NAME=idp",
		"MicrosoftAppId=" + signinAppID, "MicrosoftAppPassword=" + signinPassword,
		"ToBotFromChannelOpenIdMetadataUrl=" + meta, "ToBotFromEmulatorOpenIdMetadataUrl=" + meta,
		"ToBotFromChannelTokenIssuer=" + botframework.DefaultIssuer,
		"ToChannelFromBotLoginUrl=" + r.url + botframework.LoginPath,
		"ToChannelFromBotOAuthScope=" + botframework.DefaultIssuer,
		"OAuthUrl=" + r.url,
	})
	botPort := r.bot.Listening(t, 60*time.Second)

	t.Setenv(idpSecretEnv, idpSecret)
	cfg := app.Defaults()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.AdminListen = ln.Addr().String(), r.url, r.data, ""
	app.SectionOf[directline.Section](&cfg, "directline").Secret = r.secret
	bot := app.SectionOf[botframework.Section](&cfg, "bot")
	bot.BotEndpoint, bot.BotAppID, bot.BotAppPassword = "http://127.0.0.1:"+botPort+"/api/messages", signinAppID, signinPassword
	app.SectionOf[signin.Section](&cfg, "oauth").Connections = []signin.Connection{{
		Name: "idp", Provider: "oidc", Issuer: r.idp, ClientID: idpClientID, ClientSecretEnv: idpSecretEnv, Scopes: []string{"profile"},
	}}
	r.app, err = app.New(cfg, zerolog.New(io.MultiWriter(r.logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("bridge did not shut down")
		}
	})
	return r
}

// customer starts a conversation with a user-bound Direct Line token (the site's server asks
// for it with the secret) and the DirectLineJS client on it.
func (r *signinRig) customer(user string) (conv, token string, p *testutil.NodeProc) {
	r.t.Helper()
	req, _ := http.NewRequest("POST", r.url+"/v3/directline/tokens/generate", strings.NewReader(`{"user":{"id":"`+user+`"}}`))
	req.Header.Set("Authorization", "Bearer "+r.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	require.Equal(r.t, 200, resp.StatusCode)
	var g struct{ ConversationID, Token string }
	require.NoError(r.t, json.NewDecoder(resp.Body).Decode(&g))
	opts, _ := json.Marshal(map[string]any{"domain": r.url + "/v3/directline", "token": g.Token, "userId": user})
	p = testutil.StartNode(r.t, testutil.InteropDir(r.t), "clients/dljs-signin.js", nil, string(opts))
	p.Next(r.t, 60*time.Second, func(m map[string]any) bool { return m["event"] == "status" && m["status"] == float64(2) }) // Online
	return g.ConversationID, g.Token, p
}

// card waits for the bot's OAuthCard and returns its sign-in button's link.
func card(t *testing.T, p *testutil.NodeProc) string {
	t.Helper()
	m := p.Next(t, 60*time.Second, func(m map[string]any) bool {
		atts, _ := m["attachments"].([]any)
		return m["event"] == "activity" && len(atts) > 0 && atts[0].(map[string]any)["contentType"] == signin.OAuthCardType
	})
	content := m["attachments"].([]any)[0].(map[string]any)["content"].(map[string]any)
	require.Equal(t, "idp", content["connectionName"])
	btn := content["buttons"].([]any)[0].(map[string]any)
	require.Equal(t, "signin", btn["type"])
	link, _ := btn["value"].(string)
	require.NotEmpty(t, link, "the bridge filled the card's empty sign-in button: %v", content)
	return link
}

var formRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"[^>]*>`)

// browse opens link in the browser (jar) and signs alice in at the provider: it submits the
// login form and the consent form, following redirects, and returns the bridge's last page.
func (r *signinRig) browse(jar http.CookieJar, link string) string {
	r.t.Helper()
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(link)
	for i := 0; i < 4; i++ {
		require.NoError(r.t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(body)
		if strings.HasPrefix(resp.Request.URL.String(), r.url) {
			require.Equal(r.t, http.StatusOK, resp.StatusCode, page)
			return page
		}
		m := formRE.FindStringSubmatch(page)
		require.NotNil(r.t, m, "no form on the provider's page %s: %s", resp.Request.URL, page)
		action, perr := resp.Request.URL.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
		require.NoError(r.t, perr)
		var form url.Values
		switch {
		case strings.Contains(page, `name="prompt" value="login"`):
			form = url.Values{"prompt": {"login"}, "login": {"alice"}, "password": {"any"}}
		case strings.Contains(page, `name="prompt" value="consent"`):
			form = url.Values{"prompt": {"consent"}}
		default:
			r.t.Fatalf("unexpected provider page: %s", page)
		}
		resp, err = c.PostForm(action.String(), form)
	}
	r.t.Fatal("the sign-in did not come back to the bridge")
	return ""
}

var magicRE = regexp.MustCompile(`id="code">(\d{6})<`)

// userinfo asks the provider who the token's user is.
func (r *signinRig) userinfo(token string) string {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.idp+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	var me struct{ Sub string }
	require.NoError(r.t, json.NewDecoder(resp.Body).Decode(&me))
	return me.Sub
}

func (r *signinRig) botEvent(name string) map[string]any {
	r.t.Helper()
	return r.bot.Next(r.t, 60*time.Second, func(m map[string]any) bool { return m["event"] == name })
}

func TestSignInWithOAuthPromptBot(t *testing.T) {
	r := startSignIn(t)
	conv, dlToken, cust := r.customer("dl_alice")
	var tokens []string

	// 1. Link and magic code (§2a, §6.6).
	cust.Send(t, "say hello")
	link := card(t, cust)
	require.True(t, strings.HasPrefix(link, r.url+signin.SignInPath+"?signin="), link)
	jar, _ := cookiejar.New(nil)
	page := r.browse(jar, link)
	m := magicRE.FindStringSubmatch(page)
	require.NotNil(t, m, "the page shows a 6-digit code: %s", page)
	cust.Send(t, "say "+m[1])
	ev := r.botEvent("token")
	require.Equal(t, "magic code", ev["via"])
	tok := ev["token"].(string)
	tokens = append(tokens, tok)
	require.Equal(t, "alice", r.userinfo(tok), "the bot got alice's access token from the provider")

	// 2. SignOut, then GetToken: none.
	cust.Send(t, "say logout")
	out := r.botEvent("signedOut")
	require.Nil(t, out["token"])

	// 3. The channel completes it (§2b, §6.5): the browser holds the Direct Line session cookie
	// that getsessionid set, and Web Chat appends encodeURIComponent("&code_challenge=" + id).
	cust.Send(t, "say hello again")
	link = card(t, cust)
	browser, _ := cookiejar.New(nil)
	sid := getSessionID(t, &http.Client{Jar: browser}, r.url, dlToken)
	page = r.browse(browser, link+url.QueryEscape("&code_challenge="+sid))
	require.Contains(t, page, "You are now signed in and can close this window.")
	require.NotRegexp(t, magicRE, page)
	r.botEvent("tokenResponseEvent")
	ev = r.botEvent("token")
	require.Equal(t, "tokens/response", ev["via"])
	tok = ev["token"].(string)
	tokens = append(tokens, tok)
	require.Equal(t, "alice", r.userinfo(tok))

	// 4. Tokens never reach the customer's GET /activities, the logs, or the SQLite files.
	req, _ := http.NewRequest("GET", r.url+"/v3/directline/conversations/"+conv+"/activities", nil)
	req.Header.Set("Authorization", "Bearer "+dlToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	acts, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(acts), "You are signed in.")
	for _, tk := range tokens {
		require.NotContains(t, string(acts), tk)
		require.NotContains(t, r.logs.String(), tk)
		files, _ := filepath.Glob(filepath.Join(r.data, "*"))
		require.NotEmpty(t, files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // a directory
			}
			require.False(t, bytes.Contains(b, []byte(tk)), "%s holds a token in plaintext", f)
		}
	}
	require.NotContains(t, string(acts), "tokens/response", "the event is the bot's alone")

	// 5. Erasing the customer's conversation (the admin erase) erases their tokens.
	botToken := r.botToken()
	getToken := func() (int, string) {
		req, _ := http.NewRequest("GET", r.url+"/api/usertoken/GetToken?userId=dl_alice&connectionName=idp&channelId=directline", nil)
		req.Header.Set("Authorization", "Bearer "+botToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := getToken()
	require.Equal(t, 200, status, body)
	require.Contains(t, body, tok)
	require.NoError(t, r.app.Store.EraseConversation(context.Background(), conv))
	status, body = getToken()
	require.Equal(t, 404, status)
	require.Empty(t, body)
}

// botToken is the bot's token, as its UserTokenClient gets it (the bridge's dev token endpoint,
// scope = ToChannelFromBotOAuthScope).
func (r *signinRig) botToken() string {
	r.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {signinAppID}, "client_secret": {signinPassword}, "scope": {botframework.DefaultIssuer + "/.default"}}
	resp, err := http.PostForm(r.url+botframework.LoginPath+botframework.TokenPath, form)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(r.t, json.NewDecoder(resp.Body).Decode(&tr))
	require.NotEmpty(r.t, tr.AccessToken)
	return tr.AccessToken
}

// getSessionID is Web Chat's getSessionId (DLJS: GET {domain}/session/getsessionid with
// credentials): the browser gets the cookie and the id.
func getSessionID(t *testing.T, c *http.Client, base, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v3/directline/session/getsessionid", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var s struct{ SessionID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	require.NotEmpty(t, s.SessionID)
	found := false
	for _, ck := range resp.Cookies() {
		found = found || (ck.Name == directline.SessionCookie && ck.Value == s.SessionID && ck.HttpOnly)
	}
	require.True(t, found, "getsessionid sets %s", directline.SessionCookie)
	return s.SessionID
}

// A state or a link for another conversation is refused, live: the bot's own token, the state
// of a conversation that is not this user's.
func TestSignInStateOfAnotherConversationRefused(t *testing.T) {
	r := startSignIn(t)
	c1, _, _ := r.customer("dl_alice")
	c2, _, _ := r.customer("dl_mallory")
	tr := struct{ AccessToken string }{r.botToken()}
	state := func(conv, user string) string {
		b, _ := json.Marshal(map[string]any{"connectionName": "idp", "msAppId": signinAppID, "conversation": map[string]any{
			"user": map[string]string{"id": user}, "conversation": map[string]string{"id": conv}, "channelId": "directline"}})
		return base64Std(b)
	}
	get := func(st, bearer string) int {
		req, _ := http.NewRequest("GET", r.url+"/api/botsignin/GetSignInUrl?state="+url.QueryEscape(st), nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, get(state(c1, "dl_alice"), tr.AccessToken))
	require.Equal(t, 403, get(state(c2, "dl_alice"), tr.AccessToken), "alice's id in mallory's conversation")
	require.Equal(t, 403, get(state(c1, "dl_mallory"), tr.AccessToken), "mallory's id in alice's conversation")
	require.Equal(t, 401, get(state(c1, "dl_alice"), ""), "no bot token")
	require.Equal(t, 401, get(state(c1, "dl_alice"), tr.AccessToken+"x"), "a forged bot token")
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// The token service refuses to run for an anonymous bot (no app id): no caller could be
// authenticated, and GetToken would hand any user's token to whoever names them. Without any
// bot (a hosted bot behind Direct Line), it has no one to serve.
func TestSignInNeedsAnAuthenticatedBot(t *testing.T) {
	t.Setenv(idpSecretEnv, idpSecret)
	cfg := app.Defaults()
	cfg.DataDir, cfg.AdminListen = t.TempDir(), ""
	app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = "http://127.0.0.1:9/api/messages"
	app.SectionOf[signin.Section](&cfg, "oauth").Connections = []signin.Connection{{
		Name: "idp", Provider: "oidc", Issuer: "http://127.0.0.1:9", ClientID: idpClientID, ClientSecretEnv: idpSecretEnv,
	}}
	_, err := app.New(cfg, zerolog.Nop())
	require.ErrorContains(t, err, "bot.app_id")
}
