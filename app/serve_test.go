package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// serveProduction serves the production registry (memory store) on a loopback port with
// cfg's changes, until the test ends.
func serveProduction(t *testing.T, change func(*app.Config)) *app.App {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := app.Defaults()
	cfg.Store, cfg.Listen, cfg.ShutdownTimeout = "memory", ln.Addr().String(), 5*time.Second
	change(&cfg)
	a, err := app.New(cfg, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-served) })
	return a
}

// A client that sends its headers and a Content-Length, then holds the body back, is cut off
// within read_timeout on any path, and the bridge keeps answering while hundreds do it.
func TestHeldBodiesAreCutOffWithinTheReadTimeout(t *testing.T) {
	const held, timeout, margin = 200, time.Second, 1500 * time.Millisecond
	a := serveProduction(t, func(c *app.Config) { c.ReadTimeout = timeout })
	addr := a.Config().Listen
	paths := []string{"/v3/directline/conversations", "/v3/directline/conversations/x/activities", "/api/messages", "/no/such/path"}

	conns := make([]net.Conn, held)
	sent := make([]time.Time, held)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", paths[i%len(paths)], addr)
		require.NoError(t, err)
		conns[i], sent[i] = c, time.Now()
	}

	hc := &http.Client{Timeout: timeout / 2}
	res, err := hc.Get(a.Config().PublicURL + "/healthz")
	require.NoError(t, err, "/healthz answers promptly while the held connections are open")
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	closed := make(chan error, held)
	for i, c := range conns {
		go func() {
			_ = c.SetReadDeadline(sent[i].Add(timeout + margin))
			_, err := io.Copy(io.Discard, c) // until the server closes it
			if err != nil {
				err = fmt.Errorf("connection %d (%s) still open %v after its headers: %w", i, paths[i%len(paths)], timeout+margin, err)
			}
			closed <- err
		}()
	}
	for range conns {
		require.NoError(t, <-closed)
	}
}

// read_timeout does not cut off a websocket stream: the upgrade clears the deadlines.
func TestReadTimeoutSparesStreams(t *testing.T) {
	const secret = "a-test-secret-of-some-length"
	a := serveProduction(t, func(c *app.Config) {
		c.ReadTimeout = 300 * time.Millisecond
		dl := app.SectionOf[directline.Section](c, "directline")
		dl.Secret, dl.KeepAlive = secret, 2*time.Second
	})
	req, err := http.NewRequest(http.MethodPost, a.Config().PublicURL+"/v3/directline/conversations", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var conv struct{ StreamURL string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&conv))
	ws, _, err := websocket.DefaultDialer.Dial(conv.StreamURL, nil)
	require.NoError(t, err)
	defer ws.Close()
	time.Sleep(1200 * time.Millisecond) // four read timeouts
	require.NoError(t, ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)))
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = ws.ReadMessage() // a keep-alive, after the read timeouts
	require.NoError(t, err, "the stream outlives read_timeout")
}

// Every log line names its component once: the wiring names it, the component does not again.
func TestLogLinesCarryOneComponent(t *testing.T) {
	var logs testutil.Buffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := app.Defaults()
	cfg.Listen, cfg.DataDir, cfg.ShutdownTimeout = ln.Addr().String(), t.TempDir(), 5*time.Second // the sqlite store
	a, err := app.New(cfg, zerolog.New(&logs).Level(zerolog.DebugLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Serve(ctx, ln))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	stores := 0
	for _, line := range lines {
		require.LessOrEqual(t, strings.Count(line, `"component":`), 1, "%s", line)
		if strings.Contains(line, `"component":"store"`) {
			stores++
		}
	}
	require.NotZero(t, stores, "the store logged as component store:\n%s", logs.String())
}
