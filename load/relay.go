package load

import (
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// Relay is the hardware baseline of the comparison: a bare gorilla websocket server that sends
// every message it receives straight back on the same socket: no protocol, no store, no bot. It
// uses the lean pattern (small buffers, a pooled write buffer, the handler returns and one
// goroutine per socket reads and echoes), so it shows what the machine and the websocket
// library can do. It serves /echo.
type Relay struct {
	log      zerolog.Logger
	upgrader websocket.Upgrader

	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewRelay returns the relay.
func NewRelay(log zerolog.Logger) *Relay {
	return &Relay{
		log: log,
		upgrader: websocket.Upgrader{
			ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{},
			CheckOrigin: func(*http.Request) bool { return true },
		},
		conns: map[*websocket.Conn]struct{}{},
	}
}

// ServeHTTP upgrades /echo and echoes on the socket until it closes.
func (rl *Relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/echo" {
		http.NotFound(w, r)
		return
	}
	conn, err := rl.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	rl.mu.Lock()
	if rl.closed {
		rl.mu.Unlock()
		_ = conn.Close()
		return
	}
	rl.conns[conn] = struct{}{}
	rl.wg.Add(1)
	rl.mu.Unlock()
	go rl.echo(conn) // returning from the handler lets net/http drop its per-request state
}

func (rl *Relay) echo(conn *websocket.Conn) {
	defer func() {
		rl.mu.Lock()
		delete(rl.conns, conn)
		rl.mu.Unlock()
		_ = conn.Close()
		rl.wg.Done()
	}()
	conn.SetReadLimit(1 << 20)
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(kind, data); err != nil {
			rl.log.Debug().Err(err).Msg("relay: write failed")
			return
		}
	}
}

// Conns returns the number of open sockets.
func (rl *Relay) Conns() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.conns)
}

// Close closes every socket and waits for their goroutines.
func (rl *Relay) Close() {
	rl.mu.Lock()
	rl.closed = true
	for c := range rl.conns {
		_ = c.NetConn().Close()
	}
	rl.mu.Unlock()
	rl.wg.Wait()
}
