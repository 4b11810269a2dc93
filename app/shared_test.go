package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// serveOnRedis serves the production registry on the redis store at redisURL with a data
// directory of its own (another machine), on a loopback port, until the test ends, and
// returns its base URL.
func serveOnRedis(t *testing.T, redisURL, botURL string) (*app.App, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := app.Defaults()
	cfg.Store, cfg.Listen, cfg.ShutdownTimeout, cfg.DataDir = "redis", ln.Addr().String(), 5*time.Second, t.TempDir()
	cfg.PublicURL = "http://bridge.example" // the same public URL behind the load balancer
	require.NoError(t, cfg.Set("BRIDGE_REDIS_URL", redisURL))
	require.NoError(t, cfg.Set("BRIDGE_BOT_ENDPOINT", botURL))
	a, err := app.New(cfg, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-served) })
	return a, "http://" + ln.Addr().String()
}

// Instances on one Redis with no secret configured share the generated Direct Line secret and
// the bot-signing key: a token minted by A is accepted by B, and both publish the same keys.
func TestInstancesShareSecretAndSigningKey(t *testing.T) {
	ctx := context.Background()
	redisURL := "redis://" + testutil.RedisServer(t) + "/0"
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(bot.Close)
	a, urlA := serveOnRedis(t, redisURL, bot.URL+"/api/messages")
	_, urlB := serveOnRedis(t, redisURL, bot.URL+"/api/messages")

	secret, err := a.Store.Value(ctx, "", directline.SharedSecretKey)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(secret), 16)

	// A starts a conversation for the secret's holder and mints its token
	req, err := http.NewRequest(http.MethodPost, urlA+"/v3/directline/conversations", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+string(secret))
	var conv struct {
		ConversationID string `json:"conversationId"`
		Token          string `json:"token"`
		StreamURL      string `json:"streamUrl"`
	}
	status := doJSON(t, req, &conv)
	require.Equal(t, http.StatusCreated, status)
	require.NotEmpty(t, conv.Token)

	// B accepts A's token for that conversation
	req, err = http.NewRequest(http.MethodGet, urlB+"/v3/directline/conversations/"+conv.ConversationID+"/activities", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+conv.Token)
	require.Equal(t, http.StatusOK, doJSON(t, req, nil), "B refused a token minted by A")
	// and the secret is B's too
	req, err = http.NewRequest(http.MethodPost, urlB+"/v3/directline/tokens/generate", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+string(secret))
	req.Header.Set("Content-Type", "application/json")
	require.Equal(t, http.StatusOK, doJSON(t, req, nil), "B refused the secret A generated")
	// a token B did not sign is refused (the check is real)
	req, err = http.NewRequest(http.MethodGet, urlB+"/v3/directline/conversations/"+conv.ConversationID+"/activities", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+conv.Token[:len(conv.Token)-4]+"AAAA")
	require.Equal(t, http.StatusUnauthorized, doJSON(t, req, nil))

	// a stream on A gets at once what is posted through B
	streamURL := strings.Replace(conv.StreamURL, "ws://bridge.example", "ws://"+strings.TrimPrefix(urlA, "http://"), 1)
	require.NotEqual(t, conv.StreamURL, streamURL)
	ws, _, err := websocket.DefaultDialer.Dial(streamURL, nil)
	require.NoError(t, err)
	defer ws.Close()
	posted := time.Now()
	req, err = http.NewRequest(http.MethodPost, urlB+"/v3/directline/conversations/"+conv.ConversationID+"/activities",
		strings.NewReader(`{"type":"message","text":"through B","from":{"id":"u1"}}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+conv.Token)
	req.Header.Set("Content-Type", "application/json")
	require.Equal(t, http.StatusOK, doJSON(t, req, nil))
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, frame, err := ws.ReadMessage()
		require.NoError(t, err, "the stream on A never got the activity posted through B")
		if strings.Contains(string(frame), `"through B"`) {
			break
		}
	}
	t.Logf("on A's stream %s after the POST to B was sent", time.Since(posted))

	// both publish the same signing key for the bot
	keys := func(base string) string {
		resp, err := http.Get(base + botframework.KeysPath)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return string(b)
	}
	ka := keys(urlA)
	require.Contains(t, ka, `"kid"`)
	require.Equal(t, ka, keys(urlB), "the instances sign the bot's tokens with different keys")
}

func doJSON(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode
}
