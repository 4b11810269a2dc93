package wsutil

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// pair returns the server and client ends of a loopback websocket, with the buffer settings
// the bridge uses.
func pair(t *testing.T) (server, client *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err == nil {
			conns <- c
		}
	}))
	t.Cleanup(srv.Close)
	d := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	client, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	require.NoError(t, err)
	server = <-conns
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return server, client
}

// TestKeepAliveIsAnEmptyFrameAndAPing: the peer reads an empty text message and answers the
// ping, from either end; writing one allocates nothing.
func TestKeepAliveIsAnEmptyFrameAndAPing(t *testing.T) {
	for _, fromServer := range []bool{true, false} {
		name := map[bool]string{true: "server", false: "client"}[fromServer]
		t.Run(name, func(t *testing.T) {
			writer, peer := pair(t)
			if !fromServer {
				writer, peer = peer, writer
			}
			var pongs atomic.Int32
			writer.SetPongHandler(func(string) error { pongs.Add(1); return nil })
			go func() { // the writer's reader: pongs are handled in it
				for {
					if _, _, err := writer.NextReader(); err != nil {
						return
					}
				}
			}()
			type frame struct {
				kind int
				data []byte
			}
			frames := make(chan frame, 256)
			go func() {
				for {
					kind, b, err := peer.ReadMessage()
					if err != nil {
						close(frames)
						return
					}
					frames <- frame{kind, b}
				}
			}()
			require.NoError(t, writer.SetWriteDeadline(time.Now().Add(5*time.Second)))
			require.NoError(t, WriteKeepAlive(writer))
			select {
			case f := <-frames:
				require.Equal(t, websocket.TextMessage, f.kind)
				require.Empty(t, f.data)
			case <-time.After(5 * time.Second):
				t.Fatal("no keep-alive frame")
			}
			require.Eventually(t, func() bool { return pongs.Load() == 1 }, 5*time.Second, 10*time.Millisecond, "the ping is answered")
			// Counted on a pair of its own with no goroutine reading (AllocsPerRun counts every
			// goroutine's allocations): the kernel's buffers take the few hundred bytes.
			quiet, other := pair(t)
			if !fromServer {
				quiet, other = other, quiet
			}
			_ = other
			require.NoError(t, quiet.SetWriteDeadline(time.Now().Add(5*time.Second)))
			allocs := testing.AllocsPerRun(100, func() { _ = WriteKeepAlive(quiet) })
			require.Zero(t, allocs, "a keep-alive allocates nothing")
		})
	}
}

// TestReadFrame: empty frames come back as nil without a buffer; others whole.
func TestReadFrame(t *testing.T) {
	server, client := pair(t)
	var one [1]byte
	// Every frame is written before the reads are counted (AllocsPerRun counts every
	// goroutine's allocations, a writer's too); the kernel's buffers take them.
	require.NoError(t, server.SetWriteDeadline(time.Now().Add(5*time.Second)))
	for range 202 { // the first read, AllocsPerRun's warm-up and its 200
		require.NoError(t, server.WriteMessage(websocket.TextMessage, nil))
	}
	require.NoError(t, server.WriteMessage(websocket.TextMessage, []byte(`{"activities":[]}`)))
	require.NoError(t, server.WriteMessage(websocket.TextMessage, []byte("x")))
	b, err := ReadFrame(client, &one)
	require.NoError(t, err)
	require.Nil(t, b)
	allocs := testing.AllocsPerRun(200, func() {
		if b, err := ReadFrame(client, &one); err != nil || b != nil {
			t.Errorf("want an empty frame, got %q, %v", b, err)
		}
	})
	// gorilla/websocket allocates its 8-byte message reader for every message; ReadMessage
	// would add at least 512 bytes for the data.
	require.LessOrEqual(t, allocs, 1.0, "an empty frame costs the library's reader only")
	b, err = ReadFrame(client, &one)
	require.NoError(t, err)
	require.Equal(t, `{"activities":[]}`, string(b))
	b, err = ReadFrame(client, &one)
	require.NoError(t, err)
	require.Equal(t, "x", string(b))
	_ = server.Close()
	_, err = ReadFrame(client, &one)
	require.Error(t, err)
}

// TestWritePong: a ping's application data comes back in the pong; an empty ping is answered
// without allocating.
func TestWritePong(t *testing.T) {
	peer, writer := pair(t) // the bridge answers pings as a Direct Line client
	got := make(chan string, 2)
	peer.SetPongHandler(func(data string) error { got <- data; return nil })
	go func() {
		for {
			if _, _, err := peer.NextReader(); err != nil {
				return
			}
		}
	}()
	require.NoError(t, writer.SetWriteDeadline(time.Now().Add(5*time.Second)))
	for _, data := range []string{"", "hb-7"} {
		require.NoError(t, WritePong(writer, data))
		select {
		case d := <-got:
			require.Equal(t, data, d)
		case <-time.After(5 * time.Second):
			t.Fatalf("no pong for %q", data)
		}
	}
	_, quiet := pair(t)
	require.NoError(t, quiet.SetWriteDeadline(time.Now().Add(5*time.Second)))
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = WritePong(quiet, "") }), "an empty pong allocates nothing")
}
