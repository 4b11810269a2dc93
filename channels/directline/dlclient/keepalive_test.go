package dlclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// upstreamSocket is a websocket server end that counts what the client sends: empty text
// frames and pings (keep-alives) and pongs (answers to its own pings). Direct Line's stream
// sends empty frames itself and ignores what the client sends (directline.md §2).
type upstreamSocket struct {
	conn                *websocket.Conn
	texts, pings, pongs atomic.Int32
	pongData            chan string
}

func dialUpstream(t *testing.T) (*upstreamSocket, *websocket.Conn) {
	t.Helper()
	up := &upstreamSocket{pongData: make(chan string, 8)}
	ready := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		up.conn = c
		c.SetPingHandler(func(string) error { up.pings.Add(1); return nil })
		c.SetPongHandler(func(d string) error { up.pongs.Add(1); up.pongData <- d; return nil })
		close(ready)
		for {
			kind, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if kind == websocket.TextMessage && len(b) == 0 {
				up.texts.Add(1)
			}
		}
	}))
	t.Cleanup(srv.Close)
	conn, _, err := newDialer(http.DefaultClient).Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	<-ready
	return up, conn
}

// TestKeepAliveOnlyWhenTheUpstreamIsQuiet: while the service sends its own keep-alives the
// client sends none and answers the service's pings; once the service falls silent the client
// sends an empty frame and a ping, and a socket silent for 3×KeepAlive ends as idle.
func TestKeepAliveOnlyWhenTheUpstreamIsQuiet(t *testing.T) {
	const ka = 200 * time.Millisecond
	nop := zerolog.Nop()
	s := &session{c: &Client{cfg: Config{KeepAlive: ka}}, log: convLog{l: &nop, conv: "c1"}}
	up, conn := dialUpstream(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	type result struct {
		reason CloseReason
		err    error
	}
	done := make(chan result, 1)
	go func() {
		reason, _, err := s.read(ctx, conn)
		done <- result{reason, err}
	}()

	var wmu sync.Mutex // the test's writes to the server end: one writer
	write := func(kind int, data string) {
		wmu.Lock()
		defer wmu.Unlock()
		if kind == websocket.PingMessage {
			require.NoError(t, up.conn.WriteControl(kind, []byte(data), time.Now().Add(time.Second)))
			return
		}
		require.NoError(t, up.conn.WriteMessage(kind, []byte(data)))
	}
	// The service talks every ka/4 for 4×ka: the client sends nothing of its own.
	for i := range 16 {
		write(websocket.TextMessage, "")
		if i%4 == 0 {
			write(websocket.PingMessage, "")
		}
		time.Sleep(ka / 4)
	}
	require.Zero(t, up.texts.Load(), "no empty frame while the service talks")
	require.Zero(t, up.pings.Load(), "no ping while the service talks")
	// Its pings are answered, with their data.
	require.Eventually(t, func() bool { return up.pongs.Load() == 4 }, 5*time.Second, 10*time.Millisecond, "the four empty pings answered")
	for range 4 {
		require.Equal(t, "", waitFor(t, up.pongData))
	}
	write(websocket.PingMessage, "hb-1")
	require.Equal(t, "hb-1", waitFor(t, up.pongData))

	// Silent service: keep-alives come. The counting ping handler above answers none of the
	// client's pings, so nothing more comes from the service and the client gives up.
	require.Eventually(t, func() bool { return up.texts.Load() >= 2 && up.pings.Load() >= 2 }, 5*time.Second, 10*time.Millisecond)
	select {
	case r := <-done:
		require.Equal(t, ReasonIdle, r.reason, "%v", r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("a silent socket was not given up")
	}
}

func waitFor(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing came")
		return ""
	}
}
