package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/signin"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// Single sign-on end to end (reference/signin.md §2c, §6.8): Web Chat 4.18.1 in headless
// Chromium with an SSO store middleware, the bridge's Direct Line server and token service, a
// real botbuilder bot with OAuthPrompt (bots/sso-bot.js), and an OpenID provider (npm
// oidc-provider 8.8.1, peers/oidc-sso.js) as the connection's issuer. The page holds back the
// bot's OAuthCard and posts signin/tokenExchange with a token the provider issued to the page's
// client for the connection's Token Exchange URL (client credentials with a resource indicator:
// the provider's own JWT access token, its aud the resource — what MSAL's acquireTokenSilent
// hands an SSO page, without a login form):
//
//   - the right audience: the token service's exchange accepts it, OAuthPrompt answers the
//     invoke 200, the POST answers 200 with the invoke's id, the card is never shown, and the
//     bot says it holds that very token (its SHA-256);
//   - a token for another audience: the exchange refuses it, OAuthPrompt answers 412, the POST
//     answers 502, DirectLineJS reports "retry", and the page shows the card.
//
// Neither the token nor the invoke response is in GET /activities. Needs node, the interop
// packages and chromium: skipped without them, failed under CI.

const (
	ssoAudience    = "api://bridge-sso"
	ssoSecret      = "sso-client-secret-0123456789"
	ssoSecretEnv   = "BFBRIDGE_TEST_SSO_SECRET"
	ssoBotAppID    = "22222222-3333-4444-5555-666666666666"
	ssoBotPassword = "sso-bot-password-not-logged"
)

const ssoPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bfbridge Web Chat SSO</title></head>
<body><div id="webchat" style="height:600px;width:400px"></div>
<script src="/webchat.js"></script>
<script>
  const directLine = window.WebChat.createDirectLine({ token: %q, domain: %q });
  const ssoToken = %q; // what the page's identity provider gave it for the bot's API
  const userID = %q;
  window.sso = { seen: 0 };
  window.store = window.WebChat.createStore({}, () => (next) => (action) => {
    if (action.type === 'DIRECT_LINE/INCOMING_ACTIVITY') {
      const a = action.payload.activity;
      const card = (a.attachments || []).find((x) => x.contentType === 'application/vnd.microsoft.card.oauth');
      if (card && card.content && card.content.tokenExchangeResource) {
        window.sso.seen++;
        window.sso.resource = card.content.tokenExchangeResource;
        directLine.postActivity({ type: 'invoke', name: 'signin/tokenExchange',
          value: { id: card.content.tokenExchangeResource.id, connectionName: card.content.connectionName, token: ssoToken },
          from: { id: userID, name: 'Web Chat User', role: 'user' } })
          .subscribe((id) => {
            window.sso.id = id;
            if (id === 'retry') { window.sso.outcome = 'shown'; next(action); } else { window.sso.outcome = 'hidden'; }
          }, (err) => { window.sso.outcome = 'shown'; window.sso.error = String((err && err.message) || err); next(action); });
        return undefined; // held back until the bot has answered the exchange
      }
    }
    return next(action);
  });
  window.WebChat.renderWebChat({ directLine, store: window.store, userID, username: 'Web Chat User' },
    document.getElementById('webchat'));
</script></body></html>`

func TestWebChatSSOWithOAuthPromptBot(t *testing.T) {
	dir := testutil.InteropDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testutil.Require(t, "chromium ("+chromium+")")
	}
	t.Setenv(ssoSecretEnv, ssoSecret)
	idp := testutil.StartNode(t, dir, "peers/oidc-sso.js", []string{"PORT=0", "EXIT_ON_STDIN_END=1", "SSO_CLIENT_SECRET=" + ssoSecret})
	issuer := "http://127.0.0.1:" + idp.Listening(t, 30*time.Second)

	b := startSSOBridge(t, dir, issuer)
	shot := filepath.Join(t.TempDir(), "sso.png")
	// Each case is another user: the token service keeps a user's token once signed in, and the
	// bot's OAuthPrompt then asks no more.
	run := func(t *testing.T, user, audience, expect string) (string, string, map[string]any) {
		t.Helper()
		token := providerToken(t, issuer, audience)
		conv, dlToken := b.generate(t)
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, ssoPage, dlToken, b.url+"/v3/directline", token, user)
		})
		mux.HandleFunc("/webchat.js", func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, filepath.Join(dir, "node_modules", "botframework-webchat", "dist", "webchat.js"))
		})
		page := httptest.NewServer(mux)
		t.Cleanup(page.Close)
		raw, _ := json.Marshal(map[string]any{"pageUrl": page.URL + "/", "text": "login", "expect": expect, "cardText": "Please sign in", "screenshot": shot})
		p := testutil.StartNode(t, dir, "clients/webchat-sso.js", []string{"CHROMIUM=" + chromium}, string(raw))
		r := p.Result(t, 120*time.Second)
		require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())
		return conv, token, r
	}

	t.Run("the exchanged token reaches the bot, the card is never shown", func(t *testing.T) {
		conv, token, r := run(t, "webchat-user-1", ssoAudience, "signed in: ")
		sso := r["sso"].(map[string]any)
		require.Equal(t, "hidden", sso["outcome"], "the POST answered an id: %v", sso)
		require.True(t, strings.HasPrefix(sso["id"].(string), conv+"|"), "the invoke's id: %v", sso["id"])
		require.Equal(t, ssoAudience, sso["resource"].(map[string]any)["uri"], "tokenExchangeResource.uri is the connection's Token Exchange URL")
		require.Equal(t, false, r["cardShown"], "the OAuthCard is never rendered")
		h := sha256.Sum256([]byte(token))
		require.Contains(t, r["bodyText"], "signed in: "+hex.EncodeToString(h[:])[:16], "the bot holds the token the page's provider issued")
		b.noSecretsInHistory(t, conv, token)
	})

	t.Run("a token for another audience: 412, 502, the card is shown", func(t *testing.T) {
		conv, token, r := run(t, "webchat-user-2", "api://another-api", "")
		sso := r["sso"].(map[string]any)
		require.Equal(t, "retry", sso["id"], "DirectLineJS reads the 502 as retry: %v", sso)
		require.Equal(t, "shown", sso["outcome"])
		require.Equal(t, true, r["cardShown"], "the page shows the OAuthCard: %s", r["bodyText"])
		require.NotContains(t, r["bodyText"], "signed in:")
		b.noSecretsInHistory(t, conv, token)
	})
}

// startSSOBridge runs the whole bridge with the token service (one OIDC connection, SSO to
// ssoAudience) and the sso-bot behind it, authenticated both ways with the bridge as identity
// provider (botframework.md §8 B): the bot's listener address is known first, so that the bot
// starts with the bridge's URL as its OAuthUrl.
func startSSOBridge(t *testing.T, dir, issuer string) *liveBridge {
	t.Helper()
	public, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	publicURL := "http://" + public.Addr().String()
	meta := publicURL + botframework.OpenIDMetadataPath
	bot := testutil.StartNode(t, dir, "bots/sso-bot.js", []string{
		"PORT=0", "EXIT_ON_STDIN_END=1", "CONNECTION_NAME=idp",
		"MicrosoftAppId=" + ssoBotAppID, "MicrosoftAppPassword=" + ssoBotPassword,
		"ToBotFromChannelOpenIdMetadataUrl=" + meta, "ToBotFromEmulatorOpenIdMetadataUrl=" + meta,
		"ToBotFromChannelTokenIssuer=" + botframework.DefaultIssuer,
		"ToChannelFromBotLoginUrl=" + publicURL + botframework.LoginPath,
		"ToChannelFromBotOAuthScope=" + botframework.DefaultIssuer,
		"OAuthUrl=" + publicURL,
	})
	endpoint := "http://127.0.0.1:" + bot.Listening(t, 30*time.Second) + "/api/messages"

	cfg := app.Defaults()
	cfg.Listen = public.Addr().String()
	cfg.DataDir = t.TempDir()
	cfg.ShutdownTimeout = 5 * time.Second
	dl := app.SectionOf[directline.Section](&cfg, "directline")
	dl.Secret = "sso-interop-secret-0123456789"
	bs := app.SectionOf[botframework.Section](&cfg, "bot")
	bs.BotEndpoint, bs.BotAppID, bs.BotAppPassword = endpoint, ssoBotAppID, ssoBotPassword
	app.SectionOf[signin.Section](&cfg, "oauth").Connections = []signin.Connection{{
		Name: "idp", Provider: "oidc", Issuer: issuer, ClientID: "bridge", ClientSecretEnv: ssoSecretEnv,
		Scopes: []string{"profile"}, TokenExchangeURL: ssoAudience,
	}}
	a, err := app.New(cfg, apptest.Log(t, zerolog.WarnLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	idle, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, idle) }()
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(public) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		select {
		case <-served:
		case <-sctx.Done():
			t.Error("the bridge did not shut down")
		}
	})
	return &liveBridge{app: a, url: publicURL, secret: dl.Secret}
}

// providerToken gets the page's token for audience from the provider: client credentials with
// a resource indicator (RFC 8707), a JWT access token whose aud is audience.
func providerToken(t *testing.T, issuer, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {audience}, "scope": {"access_as_user"}}
	req, err := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.SetBasicAuth("webchat-page", ssoSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &tr))
	require.Equal(t, 3, len(strings.Split(tr.AccessToken, ".")), "a JWT")
	return tr.AccessToken
}

// noSecretsInHistory checks that the conversation's history (GET /activities with the secret)
// shows neither the sign-in invoke, nor its answer, nor the token.
func (b *liveBridge) noSecretsInHistory(t *testing.T, conv, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.url+"/v3/directline/conversations/"+conv+"/activities", nil)
	req.Header.Set("Authorization", "Bearer "+b.secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(body), token)
	require.NotContains(t, string(body), `"invoke"`)
	require.NotContains(t, string(body), `"invokeResponse"`)
	require.Contains(t, string(body), `"login"`, "the history is the conversation's")
	// The invoke rests in the log with the token sealed (internal/atrest.Log): no file of the
	// durable store (database, write-ahead log) holds it in the clear.
	dir := b.app.Config().DataDir
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		require.NotContains(t, string(data), token, "%s holds the customer's token in the clear", path)
		return nil
	}))
	require.Positive(t, files, "the store's files were read")
}
