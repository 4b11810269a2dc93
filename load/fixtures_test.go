package load

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bfbridge/bfbridge/internal/testutil"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestRelayEchoes(t *testing.T) {
	relay := NewRelay(zerolog.Nop())
	srv := httptest.NewServer(relay)
	defer srv.Close()
	defer relay.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/echo", nil)
	require.NoError(t, err)
	defer ws.Close()
	msg := appendMessage(nil, "u1", 1, 2, false)
	for range 3 {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, msg))
		_, got, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, msg, got)
	}
	require.Equal(t, 1, relay.Conns())

	resp, err := http.Get(srv.URL + "/other")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// connector is a stand-in for a Direct Line server's Connector API: it records what the bot posts.
type connector struct {
	mu    sync.Mutex
	paths []string
	posts []botActivity
}

func (c *connector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a botActivity
	_ = json.NewDecoder(r.Body).Decode(&a)
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.posts = append(c.posts, a)
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func TestEchoBotRepliesBeforeTheTurnEnds(t *testing.T) {
	conn := &connector{}
	dl := httptest.NewServer(conn)
	defer dl.Close()
	bot := NewEchoBot(zerolog.Nop())
	defer bot.Close()
	botSrv := httptest.NewServer(bot)
	defer botSrv.Close()

	post := func(body string) int {
		resp, err := http.Post(botSrv.URL+"/api/messages", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	msg := `{"type":"message","id":"a/1","text":"ld 1 2","serviceUrl":"` + dl.URL + `/","conversation":{"id":"c 1"},` +
		`"from":{"id":"u1"},"recipient":{"id":"bot","name":"Bot"}}`
	require.Equal(t, http.StatusOK, post(msg))
	conn.mu.Lock()
	require.Equal(t, []string{"/v3/conversations/c 1/activities/a/1"}, conn.paths) // the server decodes the escaped path
	got := conn.posts[0]
	conn.mu.Unlock()
	require.Equal(t, "echo: ld 1 2", got.Text)
	require.Equal(t, "a/1", got.ReplyToID)
	require.Equal(t, "bot", got.From.ID)
	require.Equal(t, "u1", got.Recipient.ID)

	require.Equal(t, http.StatusOK, post(`{"type":"conversationUpdate","membersAdded":[]}`), "nothing to say")
	require.Equal(t, http.StatusBadRequest, post(`not json`))
	// A service URL off the machine is never called.
	off := strings.Replace(msg, dl.URL, "http://10.1.2.3:80", 1)
	require.Equal(t, http.StatusBadGateway, post(off))
	conn.mu.Lock()
	require.Len(t, conn.posts, 1)
	conn.mu.Unlock()
}

func TestServeFixtures(t *testing.T) {
	for _, fixture := range []string{FixtureRelay, FixtureDLRelay, FixtureEchoBot} {
		t.Run(fixture, func(t *testing.T) {
			ctx, cancel := testContext(t)
			defer cancel()
			var out testutil.Buffer
			done := make(chan error, 1)
			go func() { done <- Serve(ctx, fixture, "127.0.0.1:0", &out, zerolog.Nop()) }()
			require.Eventually(t, func() bool { return strings.HasPrefix(out.String(), "listening 127.0.0.1:") }, 5*time.Second, 10*time.Millisecond)
			cancel()
			require.NoError(t, <-done)
		})
	}
	require.ErrorContains(t, Serve(t.Context(), FixtureRelay, "0.0.0.0:0", io.Discard, zerolog.Nop()), "loopback")
	require.ErrorContains(t, Serve(t.Context(), "nginx", "127.0.0.1:0", io.Discard, zerolog.Nop()), "unknown fixture")
}
