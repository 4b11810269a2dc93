package directline

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// CloseReason is why a websocket stream ended. Every teardown records one, in logs and metrics.
type CloseReason int

// Close reasons.
const (
	CloseClientClosed   CloseReason = iota + 1 // the client sent a close frame
	CloseReadError                             // the connection broke or the client stopped answering pings
	CloseWriteError                            // a frame could not be written in time
	CloseServerShutdown                        // the server is shutting down (close code 1012)
	CloseStoreError                            // the conversation log could not be read
)

func (r CloseReason) String() string {
	switch r {
	case CloseClientClosed:
		return "client_closed"
	case CloseReadError:
		return "read_error"
	case CloseWriteError:
		return "write_error"
	case CloseServerShutdown:
		return "server_shutdown"
	case CloseStoreError:
		return "store_error"
	}
	return "unknown"
}

const writeWait = 10 * time.Second

var upgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferSize: 4096,
	// Idle streams hold no write buffer: it is taken from the pool only while writing.
	WriteBufferPool: &sync.Pool{},
	// Streams are authorised by their token, not by origin: widgets are embedded anywhere.
	CheckOrigin: func(*http.Request) bool { return true },
}

// streamSet tracks the open streams so that shutdown can close them.
type streamSet struct {
	mu      sync.Mutex
	conns   map[*websocket.Conn]openStream
	closing bool
	wg      sync.WaitGroup
}

type openStream struct {
	conv     string
	shutdown chan struct{} // closed on shutdown
}

func (ss *streamSet) init() { ss.conns = map[*websocket.Conn]openStream{} }

func (ss *streamSet) add(c *websocket.Conn, conv string) (shutdown <-chan struct{}, ok bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closing {
		return nil, false
	}
	ch := make(chan struct{})
	ss.conns[c] = openStream{conv: conv, shutdown: ch}
	ss.wg.Add(1)
	return ch, true
}

// Drop cuts the conversation's open streams without a close frame, as a network failure
// would; clients reconnect from their watermark. It returns how many it cut.
func (s *Server) Drop(convID string) int {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	n := 0
	for c, o := range s.streams.conns {
		if o.conv == convID {
			_ = c.NetConn().Close()
			n++
		}
	}
	return n
}

func (ss *streamSet) remove(c *websocket.Conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.conns[c]; ok {
		delete(ss.conns, c)
		ss.wg.Done()
	}
}

// Streams returns the number of open websocket streams.
func (s *Server) Streams() int {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	return len(s.streams.conns)
}

// Shutdown refuses new streams and closes the open ones with close code 1012 (service restart),
// so that clients reconnect to the next instance from their watermark. It returns when they have
// closed or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.streams.mu.Lock()
	s.streams.closing = true
	for _, o := range s.streams.conns {
		close(o.shutdown)
	}
	s.streams.mu.Unlock()
	done := make(chan struct{})
	go func() { s.streams.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stream: GET /conversations/{id}/stream?watermark=&t= — the websocket stream of ActivitySets.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	cors(w)
	id := r.PathValue("id")
	cred := r.URL.Query().Get("t")
	if cred == "" {
		cred = bearer(r)
	}
	p, e := s.tokens.authenticate(cred)
	if e == nil && !p.may(id) {
		e = &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "the token is not for this conversation"}
	}
	if e != nil {
		writeError(w, e)
		return
	}
	if _, err := s.hub.Conversation(r.Context(), id); err != nil {
		writeError(w, errFromBridge(err))
		return
	}
	var after int64
	if q := r.URL.Query(); q.Has("watermark") {
		var ok bool
		if after, ok = parseWatermark(q.Get("watermark")); !ok {
			writeError(w, errBadArgument("the watermark is not one this server issued"))
			return
		}
	} else { // no watermark: only what is new from now on [RECON]
		last, err := s.store.Last(r.Context(), id)
		if err != nil {
			writeError(w, errFromBridge(err))
			return
		}
		after = last
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, errBadArgument("the stream needs a websocket upgrade"))
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	shutdown, ok := s.streams.add(conn, id)
	if !ok {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseServiceRestart, "server shutting down"), time.Now().Add(writeWait))
		_ = conn.Close()
		return
	}
	defer s.streams.remove(conn)
	reason := s.pump(r.Context(), conn, id, after, shutdown)
	s.log.Debug().Str("conv_id", id).Str("peer", r.RemoteAddr).Str("close_reason", reason.String()).Msg("stream closed")
}

// pump writes the conversation's activities after watermark after to conn, then live ones as
// they are appended, with keep-alives in between, until the stream ends. A reader goroutine
// discards what the client sends (empty keep-alives) and notices when it goes away.
func (s *Server) pump(ctx context.Context, conn *websocket.Conn, id string, after int64, shutdown <-chan struct{}) CloseReason {
	defer conn.Close()
	readerDone := make(chan CloseReason, 1)
	deadline := 2*s.cfg.KeepAlive + 10*time.Second
	go func() {
		conn.SetReadLimit(64 << 10)
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(deadline)) })
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
					readerDone <- CloseClientClosed
				} else {
					readerDone <- CloseReadError
				}
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(deadline))
		}
	}()
	keepAlive := time.NewTicker(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	live, err := s.store.Last(ctx, id) // typing before this is history, which does not keep typing
	if err != nil {
		return closeWith(conn, websocket.CloseInternalServerErr, CloseStoreError, readerDone)
	}
	for {
		for { // everything after the watermark, a page per frame
			set, more, err := s.page(ctx, id, after, live)
			if err != nil {
				s.log.Warn().Err(err).Str("conv_id", id).Msg("stream: cannot read the log")
				return closeWith(conn, websocket.CloseInternalServerErr, CloseStoreError, readerDone)
			}
			if set.Watermark == "" || set.Watermark == strconv.FormatInt(after, 10) {
				break
			}
			after, _ = strconv.ParseInt(set.Watermark, 10, 64)
			if len(set.Activities) > 0 {
				if err := writeFrame(conn, set); err != nil {
					return CloseWriteError
				}
			}
			if !more {
				break // Notify(after) fires at once if more came meanwhile
			}
		}
		select {
		case <-s.store.Notify(id, after):
		case <-keepAlive.C: // an empty text frame, as the service sends, and a ping to detect dead peers
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.TextMessage, nil); err != nil {
				return CloseWriteError
			}
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return CloseWriteError
			}
		case reason := <-readerDone:
			return reason
		case <-shutdown:
			return closeWith(conn, websocket.CloseServiceRestart, CloseServerShutdown, readerDone)
		case <-ctx.Done():
			return closeWith(conn, websocket.CloseServiceRestart, CloseServerShutdown, readerDone)
		}
	}
}

func writeFrame(conn *websocket.Conn, set activitySet) error {
	_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
	w, err := conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(set); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// closeWith starts the closing handshake with code and waits (briefly) for the client's close
// frame, which the reader goroutine receives, so that the client sees a clean close.
func closeWith(conn *websocket.Conn, code int, reason CloseReason, readerDone <-chan CloseReason) CloseReason {
	msg := websocket.FormatCloseMessage(code, reason.String())
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
		return reason
	}
	select {
	case <-readerDone:
	case <-time.After(2 * time.Second):
	}
	return reason
}
