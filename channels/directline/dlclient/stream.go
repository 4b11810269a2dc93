package dlclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bfbridge/bfbridge/internal/ctxutil"
	"github.com/bfbridge/bfbridge/internal/retry"
	"github.com/bfbridge/bfbridge/internal/wsutil"
)

// CloseReason is why a session's stream (or the session) ended. Every teardown logs one as
// close_reason.
type CloseReason int

// Close reasons.
const (
	ReasonShutdown       CloseReason = iota + 1 // the client is closing
	ReasonServerClosed                          // the upstream sent a close frame
	ReasonReadError                             // the connection broke
	ReasonIdle                                  // nothing came for 3×KeepAlive
	ReasonWriteError                            // a keep-alive could not be written
	ReasonDialError                             // the websocket could not be opened
	ReasonUpgradeRefused                        // the upstream answered the upgrade with an HTTP error
	ReasonTokenExpired                          // the token expired and could not be renewed
	ReasonGone                                  // the upstream no longer knows the conversation (404)
	ReasonEnded                                 // the conversation ended (endOfConversation, or the Hub ended it)
	ReasonPollError                             // polling failed
	ReasonReconnectError                        // GET /conversations/{id} for a new streamUrl failed
)

func (r CloseReason) String() string {
	switch r {
	case ReasonShutdown:
		return "shutdown"
	case ReasonServerClosed:
		return "server_closed"
	case ReasonReadError:
		return "read_error"
	case ReasonIdle:
		return "idle_timeout"
	case ReasonWriteError:
		return "write_error"
	case ReasonDialError:
		return "dial_error"
	case ReasonUpgradeRefused:
		return "upgrade_refused"
	case ReasonTokenExpired:
		return "token_expired"
	case ReasonGone:
		return "conversation_gone"
	case ReasonEnded:
		return "conversation_ended"
	case ReasonPollError:
		return "poll_error"
	case ReasonReconnectError:
		return "reconnect_error"
	}
	return "unknown"
}

// maxDialFailures is how many websocket dials in a row may fail, in auto mode, before the
// session polls instead.
const maxDialFailures = 3

// run is the session's receive loop: the websocket stream, reconnected from the last watermark
// with jittered backoff, or polling. It ends when the session stops.
func (s *session) run() {
	defer s.halt() // the refresher ends with it
	attempt, dialFailures := 0, 0
	for s.ctx.Err() == nil {
		var reason CloseReason
		var err error
		if s.isPolling() {
			reason, err = s.poll(s.ctx)
		} else {
			var healthy bool
			reason, healthy, err = s.streamOnce(s.ctx)
			switch {
			case healthy:
				attempt, dialFailures = 0, 0
			case reason == ReasonDialError:
				dialFailures++
			}
		}
		var se *stopError
		stopped := errors.As(err, &se)
		switch {
		case s.ctx.Err() != nil:
			s.log.Debug().Str("close_reason", ReasonShutdown.String()).Msg("receive loop stopped")
			return
		case !stopped && s.c.cfg.Mode == ModeAuto && (reason == ReasonUpgradeRefused || dialFailures >= maxDialFailures):
			s.setPolling()
			s.log.Warn().Err(err).Str("close_reason", reason.String()).Msg("websocket unavailable; polling instead")
			continue
		case stopped:
			s.log.Info().Err(se.err).Str("close_reason", se.reason.String()).Msg("upstream session ended")
			if se.reason == ReasonTokenExpired {
				s.c.forget(s)
				s.stop(se.reason)
			} else {
				s.c.end(s, se.reason)
			}
			return
		}
		wait := s.c.backoff(attempt)
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > wait {
			wait = ae.RetryAfter // Retry-After wins
		}
		attempt++
		s.log.Info().Err(err).Str("close_reason", reason.String()).Int("attempt", attempt).Str("watermark", s.watermark()).
			Dur("wait", wait).Msg("reconnecting")
		if ctxutil.Sleep(s.ctx, wait) != nil {
			return
		}
	}
}

func (s *session) isPolling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

func (s *session) setPolling() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polling = true
}

func (s *session) setConnected(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = v
}

// fresh returns a streamUrl to connect with: the one the last start or reconnect gave while it
// is fresh, else a new one from GET /conversations/{id}?watermark=<last>. A token the upstream
// refuses as expired is renewed with the secret when there is one.
func (s *session) fresh(ctx context.Context) (string, error) {
	if u := s.takeStreamURL(); u != "" {
		return u, nil
	}
	var conv conversation
	err := s.c.do(ctx, s.reconnectCall(s.cred, s.watermark()), &conv)
	if errors.Is(err, ErrTokenExpired) {
		if rerr := s.recover(ctx); rerr != nil {
			return "", &stopError{reason: ReasonTokenExpired, err: rerr}
		}
		if u := s.takeStreamURL(); u != "" {
			return u, nil
		}
		err = s.c.do(ctx, s.reconnectCall(s.cred, s.watermark()), &conv)
	}
	switch {
	case errors.Is(err, ErrConversationGone):
		return "", &stopError{reason: ReasonGone, err: err}
	case err != nil:
		return "", err
	}
	s.setToken(conv.Token, conv.ExpiresIn, true)
	if conv.StreamURL == "" {
		return "", &APIError{Op: "reconnect", Status: http.StatusNotImplemented, Message: "no streamUrl"}
	}
	return conv.StreamURL, nil
}

// streamOnce opens the websocket stream and reads it until it ends. healthy reports a stream
// that carried activities or lived a while, after which the backoff starts over.
func (s *session) streamOnce(ctx context.Context) (reason CloseReason, healthy bool, err error) {
	u, err := s.fresh(ctx)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotImplemented {
			return ReasonUpgradeRefused, false, err // a server without streams (the Emulator's way)
		}
		return ReasonReconnectError, false, err
	}
	conn, resp, err := s.c.dialer.DialContext(ctx, u, http.Header{"User-Agent": {botAgent}})
	if err != nil {
		if ctx.Err() != nil {
			return ReasonShutdown, false, ctx.Err()
		}
		if resp == nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = redactErr(err)
			}
			return ReasonDialError, false, err
		}
		_ = resp.Body.Close()
		ae := &APIError{Op: "open stream", Status: resp.StatusCode, RetryAfter: retry.After(resp.Header, time.Now())}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return ReasonDialError, false, ae // the next GET /conversations/{id} tells what is wrong
		}
		return ReasonUpgradeRefused, false, ae
	}
	start := time.Now()
	s.setConnected(true)
	defer s.setConnected(false)
	s.log.Debug().Str("watermark", s.watermark()).Msg("stream connected")
	reason, got, err := s.read(ctx, conn)
	return reason, got || time.Since(start) > 10*time.Second, err
}

// read reads frames from conn and hands their activities to the Hub until the stream ends. It
// gives up on a socket silent for 3×KeepAlive. When the upstream has sent nothing for
// KeepAlive it sends an empty frame and a ping (whose pong counts as a sign of life); a
// service that sends its own keep-alives (Direct Line does, directline.md §2) is not sent
// any, as a browser's Web Chat sends none (at thousands of idle sockets, each keep-alive is two
// writes here and a pong to read, every interval). The upstream's pings are answered
// (wsutil.WritePong). The reading is done in the caller's goroutine; the keep-alives and the
// close frame on shutdown are written from timers, so that an idle stream costs this one
// goroutine. Writers take wmu: the keep-alive timer, the ping handler (in this goroutine), the
// shutdown.
func (s *session) read(ctx context.Context, conn *websocket.Conn) (reason CloseReason, got bool, err error) {
	ka, idle := s.c.cfg.KeepAlive, 3*s.c.cfg.KeepAlive
	conn.SetReadLimit(maxResponseBytes)
	var (
		wmu         sync.Mutex // one writer at a time: keep-alives, pongs and the close frame
		ended       bool
		writeFailed atomic.Bool
		keepAlive   *time.Timer
		heard       atomic.Int64 // when the upstream last sent a frame (unix ns)
	)
	heard.Store(time.Now().UnixNano())
	alive := func() { heard.Store(time.Now().UnixNano()); _ = conn.SetReadDeadline(time.Now().Add(idle)) }
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetPingHandler(func(data string) error {
		alive()
		wmu.Lock()
		defer wmu.Unlock()
		if ended {
			return nil
		}
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := wsutil.WritePong(conn, data); err != nil {
			writeFailed.Store(true)
			return err // ends the read below
		}
		return nil
	})
	wmu.Lock()
	keepAlive = time.AfterFunc(ka, func() {
		wmu.Lock()
		defer wmu.Unlock()
		if ended {
			return
		}
		if quiet := time.Since(time.Unix(0, heard.Load())); quiet < ka {
			keepAlive.Reset(ka - quiet) // the upstream spoke lately
			return
		}
		// An empty message, which the service ignores (directline.md §2), and a ping, which
		// any websocket server answers.
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if wsutil.WriteKeepAlive(conn) != nil {
			writeFailed.Store(true)
			_ = conn.Close() // ends the read below
			return
		}
		keepAlive.Reset(ka)
	})
	wmu.Unlock()
	stopShutdown := context.AfterFunc(ctx, func() {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = conn.Close() // ends the read below
	})
	defer func() {
		stopShutdown()
		wmu.Lock()
		ended = true
		keepAlive.Stop()
		wmu.Unlock()
		_ = conn.Close()
	}()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		b, err := s.readFrame(conn)
		if err != nil {
			var ce *websocket.CloseError
			var ne net.Error
			switch {
			case ctx.Err() != nil:
				return ReasonShutdown, got, ctx.Err()
			case writeFailed.Load():
				return ReasonWriteError, got, err
			case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure: // 1006: no close frame came
				return ReasonServerClosed, got, err
			case errors.As(err, &ne) && ne.Timeout():
				return ReasonIdle, got, err
			}
			return ReasonReadError, got, err
		}
		heard.Store(time.Now().UnixNano())
		if len(b) == 0 {
			continue // a keep-alive
		}
		set, ok, perr := parseActivitySet(b)
		if perr != nil {
			s.log.Warn().Err(perr).Msg("frame skipped")
			continue
		}
		if !ok {
			continue // a keep-alive
		}
		got = got || len(set.Activities) > 0
		if err := s.handleSet(ctx, set); err != nil {
			if ctx.Err() != nil {
				return ReasonShutdown, got, err
			}
			return ReasonEnded, got, err
		}
	}
}

// poll reads GET /activities?watermark= every PollInterval, at once again after a page that
// had activities or after a post, until the session stops or a call fails.
func (s *session) poll(ctx context.Context) (CloseReason, error) {
	for {
		var raw json.RawMessage
		k := call{op: "get activities", method: http.MethodGet, cred: s.cred, idempotent: true,
			url: s.domain + "/conversations/" + url.PathEscape(s.upID) + "/activities?watermark=" + url.QueryEscape(s.watermark())}
		err := s.c.do(ctx, k, &raw)
		if errors.Is(err, ErrTokenExpired) {
			if rerr := s.recover(ctx); rerr != nil {
				return ReasonTokenExpired, &stopError{reason: ReasonTokenExpired, err: rerr}
			}
			continue
		}
		switch {
		case ctx.Err() != nil:
			return ReasonShutdown, ctx.Err()
		case errors.Is(err, ErrConversationGone):
			return ReasonGone, &stopError{reason: ReasonGone, err: err}
		case err != nil:
			return ReasonPollError, err
		}
		set, ok, err := parseActivitySet(raw)
		if err != nil {
			return ReasonPollError, err
		}
		if ok {
			prev := s.watermark()
			if err := s.handleSet(ctx, set); err != nil {
				if ctx.Err() != nil {
					return ReasonShutdown, err
				}
				return ReasonEnded, err
			}
			if len(set.Activities)+set.Skipped > 0 && set.Watermark != "" && set.Watermark != prev {
				continue // page until no activities (directline.md §1)
			}
		}
		t := time.NewTimer(s.c.cfg.PollInterval)
		select {
		case <-t.C:
		case <-s.nudge:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return ReasonShutdown, ctx.Err()
		}
	}
}

// readFrame reads the next frame of the session's stream; a keep-alive is empty and costs no
// allocation.
func (s *session) readFrame(conn *websocket.Conn) ([]byte, error) {
	return wsutil.ReadFrame(conn, &s.one)
}
