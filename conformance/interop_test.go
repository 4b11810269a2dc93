package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// liveBridge is a whole bridge (app) serving on a loopback port.
type liveBridge struct {
	app    *app.App
	url    string // public base URL
	secret string
}

// startBridge runs the bridge on 127.0.0.1 with a random port until the test ends.
func startBridge(t *testing.T, mod func(*app.Config)) *liveBridge {
	t.Helper()
	cfg := app.Defaults()
	app.SectionOf[directline.Section](&cfg, "directline").Secret = "interop-secret-0123456789"
	if mod != nil {
		mod(&cfg)
	}
	a := apptest.Serve(t, cfg, apptest.Log(t, zerolog.WarnLevel))
	return &liveBridge{app: a, url: a.Config().PublicURL, secret: app.SectionOf[directline.Section](&cfg, "directline").Secret}
}

// startEchoBot runs the harness's real botbuilder echo bot (anonymous) and returns its endpoint.
func startEchoBot(t *testing.T, dir string, env ...string) string {
	t.Helper()
	bot := testutil.StartNode(t, dir, "bots/echo-bot.js", append([]string{"PORT=0", "MicrosoftAppId=", "MicrosoftAppPassword="}, env...))
	port := bot.Listening(t, 30*time.Second)
	return "http://127.0.0.1:" + port + "/api/messages"
}

// generate asks the bridge for a token (POST /tokens/generate with the secret).
func (b *liveBridge) generate(t *testing.T) (conv, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.url+"/v3/directline/tokens/generate", nil)
	req.Header.Set("Authorization", "Bearer "+b.secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var r struct{ ConversationID, Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r.ConversationID, r.Token
}

// post sends a message with the secret, as another client of the same conversation would.
func (b *liveBridge) post(t *testing.T, conv, text string) {
	t.Helper()
	body := fmt.Sprintf(`{"type":"message","from":{"id":"dl_other"},"text":%q}`, text)
	req, _ := http.NewRequest("POST", b.url+"/v3/directline/conversations/"+conv+"/activities", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}

// logIDs returns the ids of the activities in the conversation's log that clients see.
func (b *liveBridge) logIDs(t *testing.T, conv string) []string {
	t.Helper()
	recs, err := b.app.Store.Since(context.Background(), conv, -1, 0)
	require.NoError(t, err)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.Activity.ID)
	}
	return ids
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func TestDirectLineJSWithBotbuilderBot(t *testing.T) {
	dir := testutil.InteropDir(t)
	endpoint := startEchoBot(t, dir)
	b := startBridge(t, func(c *app.Config) { app.SectionOf[botframework.Section](c, "bot").BotEndpoint = endpoint })
	domain := b.url + "/v3/directline"

	run := func(t *testing.T, opts map[string]any) (*testutil.NodeProc, string) {
		conv, token := b.generate(t)
		opts["domain"], opts["token"] = domain, token
		raw, _ := json.Marshal(opts)
		return testutil.StartNode(t, dir, "clients/dljs.js", nil, string(raw)), conv
	}
	checkExchange := func(t *testing.T, r map[string]any, key string) {
		t.Helper()
		ex, ok := r[key].(map[string]any)
		require.True(t, ok, "no %s exchange in %v", key, r)
		require.Contains(t, ex["reply"], "echo: ")
		require.Contains(t, ex["reply"], ex["echo"], "the bot echoed the text the client sent")
	}

	for _, mode := range []string{"websocket", "polling"} {
		t.Run(mode, func(t *testing.T) {
			p, conv := run(t, map[string]any{"scenario": mode, "webSocket": mode == "websocket"})
			r := p.Result(t, 60*time.Second)
			require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())
			checkExchange(t, r, "first")
			first := r["first"].(map[string]any)
			require.True(t, strings.HasPrefix(first["id"].(string), conv+"|"), "the POST id is the echoed id, {conv}|{seq}")
			require.Empty(t, r["duplicates"])
			require.Subset(t, b.logIDs(t, conv), strs(r["ids"]))
		})
	}

	t.Run("reconnect after the bridge drops the socket", func(t *testing.T) {
		p, conv := run(t, map[string]any{"scenario": "reconnect", "expectAfterDrop": 2, "timeoutMs": 90000})
		p.Next(t, 60*time.Second, func(m map[string]any) bool { return m["event"] == "ready-for-drop" })
		require.Equal(t, 1, b.app.Channel(directline.ChannelName).(interface{ Drop(string) int }).Drop(conv), "one stream to drop")
		b.post(t, conv, "while you were away") // its echo and the bot's reply are missed live
		p.Send(t, "continue")
		r := p.Result(t, 80*time.Second)
		require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())
		checkExchange(t, r, "second")
		require.Empty(t, r["duplicates"], "every activity exactly once")
		require.Equal(t, b.logIDs(t, conv), strs(r["ids"]), "every activity of the log, in order, exactly once")
	})

	t.Run("token refresh", func(t *testing.T) {
		p, _ := run(t, map[string]any{"scenario": "refresh"})
		r := p.Result(t, 60*time.Second)
		require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())
		require.Equal(t, true, r["refreshed"])
		checkExchange(t, r, "first")
	})

	t.Run("expired token gets 403 TokenExpired", func(t *testing.T) {
		short := startBridge(t, func(c *app.Config) {
			app.SectionOf[botframework.Section](c, "bot").BotEndpoint = endpoint
			app.SectionOf[directline.Section](c, "directline").TokenTTL = 3 * time.Second
		})
		conv, token := short.generate(t)
		raw, _ := json.Marshal(map[string]any{"scenario": "expired", "domain": short.url + "/v3/directline", "token": token, "waitMs": 3500})
		p := testutil.StartNode(t, dir, "clients/dljs.js", nil, string(raw))
		r := p.Result(t, 60*time.Second)
		require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())
		require.Equal(t, "post answered retry", r["postAfterExpiry"], "DirectLineJS answers a 403 on post with retry")
		require.Contains(t, r["statuses"], float64(3), "DirectLineJS reports ExpiredToken")
		// the raw answer is the documented error body
		req, _ := http.NewRequest("GET", short.url+"/v3/directline/conversations/"+conv+"/activities", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var eb struct{ Error struct{ Code string } }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
		require.Equal(t, 403, resp.StatusCode)
		require.Equal(t, "TokenExpired", eb.Error.Code)
	})
}

const webChatPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bfbridge Web Chat interop</title></head>
<body><div id="webchat" style="height:600px;width:400px"></div>
<script src="/webchat.js"></script>
<script>
  window.store = window.WebChat.createStore();
  window.WebChat.renderWebChat({
    directLine: window.WebChat.createDirectLine({ token: %q, domain: %q }),
    store: window.store, userID: 'webchat-user', username: 'Web Chat User'
  }, document.getElementById('webchat'));
</script></body></html>`

func TestWebChatInHeadlessChromium(t *testing.T) {
	dir := testutil.InteropDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testutil.Require(t, "chromium ("+chromium+")")
	}
	endpoint := startEchoBot(t, dir)
	b := startBridge(t, func(c *app.Config) { app.SectionOf[botframework.Section](c, "bot").BotEndpoint = endpoint })
	_, token := b.generate(t)
	// The page comes from another origin than the bridge, so the browser checks CORS.
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, webChatPage, token, b.url+"/v3/directline")
	})
	mux.HandleFunc("/webchat.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "node_modules", "botframework-webchat", "dist", "webchat.js"))
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)

	shot := filepath.Join(t.TempDir(), "webchat.png")
	raw, _ := json.Marshal(map[string]any{"pageUrl": page.URL + "/", "text": "hello from web chat", "screenshot": shot})
	p := testutil.StartNode(t, dir, "clients/webchat.js", []string{"CHROMIUM=" + chromium}, string(raw))
	r := p.Result(t, 120*time.Second)
	require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())
	require.Equal(t, false, r["sendFailedShown"])
	var sent, reply map[string]any
	for _, x := range r["activities"].([]any) {
		a := x.(map[string]any)
		if a["role"] == "user" && a["text"] == "hello from web chat" {
			sent = a
		}
		if a["text"] == "echo: hello from web chat" {
			reply = a
		}
	}
	require.NotNil(t, sent, "the user's message is in the transcript")
	require.Equal(t, "sent", sent["state"], "the message left the sending state")
	require.NotEmpty(t, sent["id"])
	require.NotNil(t, reply, "the bot's reply rendered")
	require.Equal(t, sent["id"], reply["replyToId"])
	if os.Getenv("BFBRIDGE_KEEP_SCREENSHOT") != "" {
		data, _ := os.ReadFile(shot)
		_ = os.WriteFile(os.Getenv("BFBRIDGE_KEEP_SCREENSHOT"), data, 0o644)
	}
}
