package directline

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bfbridge/bfbridge/internal/wsutil"
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

// streamSet tracks the open streams so that shutdown can close them, and counts them per
// conversation (Config.MaxStreamsPerConversation).
type streamSet struct {
	mu      sync.Mutex
	open    map[*stream]struct{}
	perConv map[string]int // open or about to be: reserved before the upgrade
	closing bool
	wg      sync.WaitGroup
}

func (ss *streamSet) init() { ss.open, ss.perConv = map[*stream]struct{}{}, map[string]int{} }

// reserve counts one more stream of conversation id, or reports that it has limit already.
func (ss *streamSet) reserve(id string, limit int) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.perConv[id] >= limit {
		return false
	}
	ss.perConv[id]++
	return true
}

// release gives back a reservation of conversation id. The caller holds mu.
func (ss *streamSet) releaseLocked(id string) {
	if ss.perConv[id]--; ss.perConv[id] <= 0 {
		delete(ss.perConv, id)
	}
}

func (ss *streamSet) release(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.releaseLocked(id)
}

func (ss *streamSet) add(st *stream) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closing {
		ss.releaseLocked(st.id)
		return false
	}
	ss.open[st] = struct{}{}
	ss.wg.Add(1)
	return true
}

func (ss *streamSet) remove(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.open[st]; ok {
		delete(ss.open, st)
		ss.releaseLocked(st.id)
		ss.wg.Done()
	}
}

// Drop cuts the conversation's open streams without a close frame, as a network failure
// would; clients reconnect from their watermark. It returns how many it cut.
func (s *Server) Drop(convID string) int {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	n := 0
	for st := range s.streams.open {
		if st.id == convID {
			_ = st.conn.NetConn().Close()
			n++
		}
	}
	return n
}

// Streams returns the number of open websocket streams.
func (s *Server) Streams() int {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	return len(s.streams.open)
}

// Shutdown refuses new streams and closes the open ones with close code 1012 (service restart),
// so that clients reconnect to the next instance from their watermark. It returns when they have
// closed, or when ctx is done, cutting off the connections of those that have not.
func (s *Server) Shutdown(ctx context.Context) error {
	s.streams.mu.Lock()
	s.streams.closing = true
	open := make([]*stream, 0, len(s.streams.open))
	for st := range s.streams.open {
		open = append(open, st)
	}
	s.streams.mu.Unlock()
	for _, st := range open { // all at once: a client that does not read holds up only its own
		go func() {
			st.mu.Lock()
			st.endLocked(websocket.CloseServiceRestart, CloseServerShutdown)
			st.mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() { s.streams.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, st := range open { // out of time: cut off those still writing or closing
			_ = st.conn.Close()
		}
		return ctx.Err()
	}
}

// stream: GET /conversations/{id}/stream?watermark=&t= — the websocket stream of ActivitySets.
// The handler returns once the socket is upgraded, so that net/http lets go of the request's
// buffers; an open stream then costs one goroutine, its reader (see stream).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	cors(w)
	id := r.PathValue("id")
	cred := r.URL.Query().Get("t")
	inURL := cred != ""
	if !inURL {
		cred = bearer(r)
	}
	p, e := s.tokens.authenticate(cred)
	if e == nil && p.secret && inURL { // URLs get logged: tokens only there
		e = &apiError{Status: http.StatusUnauthorized, Code: CodeBadArgument, Message: "the stream URL takes a token, not the secret"}
	}
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
	// Typing before the stream opens is history, which does not keep typing.
	live, err := s.hub.Last(r.Context(), id)
	if err != nil {
		writeError(w, errFromBridge(err))
		return
	}
	after := live // no watermark: only what is new from now on [RECON]
	if q := r.URL.Query(); q.Has("watermark") {
		var ok bool
		if after, ok = parseWatermark(q.Get("watermark")); !ok {
			writeError(w, errBadArgument("the watermark is not one this server issued"))
			return
		}
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, errBadArgument("the stream needs a websocket upgrade"))
		return
	}
	if limit := s.cfg.MaxStreamsPerConversation; !s.streams.reserve(id, limit) {
		writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: CodeThrottled, RetryAfter: 5,
			Message: fmt.Sprintf("the conversation has %d open streams, the most allowed: close one, or retry later", limit)})
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.streams.release(id)
		return // the upgrader has answered
	}
	st := &stream{s: s, conn: conn, id: id, peer: r.RemoteAddr, after: after, live: live}
	if !s.streams.add(st) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseServiceRestart, "server shutting down"), time.Now().Add(writeWait))
		_ = conn.Close()
		return
	}
	go st.run()
}

// stream is one open websocket stream. Its only goroutine reads (and discards) what the client
// sends, which notices when the client goes away. Frames are written under mu by whoever has
// something to send: the first flush, the store's Watch callback after an append, the
// keep-alive timer, shutdown.
type stream struct {
	s    *Server
	conn *websocket.Conn
	id   string
	peer string

	closing atomic.Bool // a close frame was sent: the reader only waits for the client's

	mu     sync.Mutex
	after  int64 // the watermark of the last activity written (or skipped as invisible)
	live   int64 // the last sequence number before the stream opened (see visible)
	ended  bool
	reason CloseReason
	stop   func() bool // cancels the pending Watch
	keep   *time.Timer // the next keep-alive
}

// run writes what the log holds after the watermark, then reads until the stream ends.
func (st *stream) run() {
	conn := st.conn
	deadline := 2*st.s.cfg.KeepAlive + 10*time.Second
	conn.SetReadLimit(64 << 10)
	conn.SetPongHandler(func(string) error {
		if st.closing.Load() {
			return nil
		}
		return conn.SetReadDeadline(time.Now().Add(deadline))
	})
	st.mu.Lock()
	if !st.ended { // else shutdown has begun the closing handshake and set its own deadline
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
	}
	st.keep = time.AfterFunc(st.s.cfg.KeepAlive, st.keepAlive)
	st.flushLocked()
	st.mu.Unlock()
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			reason := CloseReadError
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				reason = CloseClientClosed
			}
			st.mu.Lock()
			st.endLocked(0, reason)
			reason = st.reason
			st.mu.Unlock()
			_ = conn.Close()
			st.s.streams.remove(st)
			st.s.cfg.Metrics.WebsocketClosed(ChannelName, reason.String())
			st.s.log.Debug().Str("conv_id", st.id).Str("peer", st.peer).Str("close_reason", reason.String()).Msg("stream closed")
			return
		}
		if !st.closing.Load() {
			_ = conn.SetReadDeadline(time.Now().Add(deadline))
		}
	}
}

// wake is the Watch callback: the log has grown.
func (st *stream) wake() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stop = nil
	st.flushLocked()
}

// flushLocked writes everything after the watermark, a page per frame, then watches the log for
// more. The caller holds mu.
func (st *stream) flushLocked() {
	if st.ended {
		return
	}
	for {
		set, more, err := st.s.page(context.Background(), st.id, st.after, st.live)
		if err != nil {
			st.s.log.Warn().Err(err).Str("conv_id", st.id).Msg("stream: cannot read the log")
			st.endLocked(websocket.CloseInternalServerErr, CloseStoreError)
			return
		}
		if set.Watermark != "" {
			st.after, _ = strconv.ParseInt(set.Watermark, 10, 64)
		}
		if len(set.Activities) > 0 {
			if err := writeFrame(st.conn, set); err != nil {
				st.endLocked(0, CloseWriteError)
				return
			}
		}
		if !more {
			break
		}
	}
	st.stop = st.s.hub.Watch(st.id, st.after, st.wake) // called at once if more came meanwhile
}

// keepAlive sends an empty text frame, as the service does, and a ping to detect dead peers.
func (st *stream) keepAlive() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return
	}
	_ = st.conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := wsutil.WriteKeepAlive(st.conn); err != nil {
		st.endLocked(0, CloseWriteError)
		return
	}
	st.keep.Reset(st.s.cfg.KeepAlive)
}

// endLocked ends the stream for reason, once. With a close code it starts the closing handshake
// and gives the client 2 s to answer it, which the reader receives; without one (the connection
// failed) it closes the connection, which ends the reader. The caller holds mu.
func (st *stream) endLocked(code int, reason CloseReason) {
	if st.ended {
		return
	}
	st.ended, st.reason = true, reason
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
	if st.keep != nil {
		st.keep.Stop()
	}
	if code == 0 {
		_ = st.conn.Close()
		return
	}
	st.closing.Store(true)
	msg := websocket.FormatCloseMessage(code, reason.String())
	if err := st.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
		_ = st.conn.Close()
		return
	}
	_ = st.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// writeFrame writes an ActivitySet as one text frame. The activities are stored JSON, written as
// they are: encoding/json would check and compact each again.
func writeFrame(conn *websocket.Conn, set activitySet) error {
	_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
	w, err := conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	buf := frameBuffers.Get().(*[]byte)
	*buf = appendSet((*buf)[:0], set)
	_, err = w.Write(*buf) // copied into the connection's write buffer
	if cap(*buf) <= maxPooledFrame {
		frameBuffers.Put(buf)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// frameBuffers holds the buffers frames are assembled in: a frame is written on every wake-up
// of every stream, and a new buffer for each was about 3% of the bytes the hot path allocated.
// Buffers that grew past maxPooledFrame (a page of large activities) are left to the GC.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledFrame = 64 << 10
