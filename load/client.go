package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// endpoint is a server under load.
type endpoint struct {
	kind   string // KindDirectLine, KindOfflineDirectLine or KindRelay
	base   string // http://127.0.0.1:port
	secret string // Direct Line
	// cluster is the instances of a bridge-redis run with more than one (base is the first's),
	// or nil.
	cluster *cluster
}

// client holds the conversations of one run against one endpoint and counts what comes back.
type client struct {
	ep           endpoint
	mode         string
	opts         *Options
	log          zerolog.Logger
	http         *http.Client
	dialer       *websocket.Dialer
	convs        []*conv
	expectPrefix bool // replies are the echo bot's ("echo: …"); the rest is the customer's own activities

	readCtx context.Context // readers and pollers
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closing atomic.Bool

	acks, fails, replies, dups, unknown, own, texts, frames, polls atomic.Int64
	resends, reconnects                                            atomic.Int64 // a cluster's retries on another instance

	errMu sync.Mutex
	errs  map[string]int64

	lat, ackLat, lag atomic.Pointer[histogram] // of the current phase
	window           atomic.Pointer[histogram] // since the last progress line
	measureFrom      atomic.Int64              // unix ns: sends due in [from, to) count in latency
	measureTo        atomic.Int64
}

func newClient(ep endpoint, mode string, o *Options, log zerolog.Logger) *client {
	d := newSourceDialer(o.Sources)
	cl := &client{
		ep: ep, mode: mode, opts: o, log: log, http: newHTTPClient(d, o.HTTPConns), dialer: newWSDialer(d),
		expectPrefix: ep.kind != KindRelay, errs: map[string]int64{},
	}
	cl.readCtx, cl.stop = context.WithCancel(context.Background())
	cl.resetHistograms()
	return cl
}

func (cl *client) resetHistograms() {
	cl.lat.Store(new(histogram))
	cl.ackLat.Store(new(histogram))
	cl.lag.Store(new(histogram))
	cl.window.Store(new(histogram))
}

// fail counts an error of a kind; the first of each kind is logged with its detail.
func (cl *client) fail(kind string, err error) {
	cl.errMu.Lock()
	cl.errs[kind]++
	first := cl.errs[kind] == 1
	cl.errMu.Unlock()
	if first {
		cl.log.Warn().Err(err).Str("kind", kind).Msg("load: first error of this kind")
	}
}

func (cl *client) errorCounts() map[string]int64 {
	cl.errMu.Lock()
	defer cl.errMu.Unlock()
	out := make(map[string]int64, len(cl.errs))
	for k, v := range cl.errs {
		out[k] = v
	}
	return out
}

// open starts n conversations, 64 at a time, calling progress as they open (one call at a
// time, from the opening goroutines: its caller need not lock).
func (cl *client) open(ctx context.Context, n int, progress func(opened int)) error {
	cl.convs = make([]*conv, n)
	var opened atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var progressMu sync.Mutex // progress is called by the opening goroutines, one at a time
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range cl.convs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := newConv(i)
			var err error
			for attempt := 0; attempt < 3; attempt++ {
				if err = cl.openOne(ctx, c); err == nil || ctx.Err() != nil {
					break
				}
			}
			if err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("open conversation %d: %w", i, err); cancel() })
				return
			}
			cl.convs[i] = c
			if progress != nil {
				progressMu.Lock()
				progress(int(opened.Add(1)))
				progressMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open conversations: %w", err)
	}
	for _, c := range cl.convs {
		switch {
		case c.ws != nil:
			cl.wg.Add(1)
			go cl.read(c)
		case cl.mode == ModePoll:
			cl.wg.Add(1)
			go cl.poller(c)
		}
	}
	return nil
}

// openOne starts one conversation (and its stream, in websocket mode).
func (cl *client) openOne(ctx context.Context, c *conv) error {
	switch cl.ep.kind {
	case KindRelay:
		ws, _, err := cl.dialer.DialContext(ctx, "ws"+strings.TrimPrefix(cl.ep.base, "http")+"/echo", nil)
		if err != nil {
			return fmt.Errorf("dial the relay: %w", err)
		}
		c.ws = ws
		return nil
	case KindOfflineDirectLine:
		var cr struct {
			ConversationID string `json:"conversationId"`
		}
		if err := cl.postJSON(ctx, cl.ep.base+"/directline/conversations", "", []byte("{}"), &cr); err != nil {
			return err
		}
		if cr.ConversationID == "" {
			return errors.New("no conversationId in the answer")
		}
		c.id = cr.ConversationID
		c.watermark = "0"
		return nil
	}
	var cr struct {
		ConversationID string `json:"conversationId"`
		Token          string `json:"token"`
		StreamURL      string `json:"streamUrl"`
	}
	body := []byte(`{"user":{"id":"` + c.user + `"}}`)
	if err := cl.postJSON(ctx, cl.ep.baseFor(c.idx, roleOpen, 0)+"/v3/directline/conversations", cl.ep.secret, body, &cr); err != nil {
		return err
	}
	if cr.ConversationID == "" || cr.Token == "" {
		return errors.New("no conversationId or token in the answer")
	}
	c.id, c.token = cr.ConversationID, cr.Token
	if cl.mode != ModeWebsocket {
		return nil
	}
	if err := CheckLoopbackURL(cr.StreamURL); err != nil {
		return fmt.Errorf("streamUrl: %w", err)
	}
	streamURL := cr.StreamURL
	if cl.ep.cluster != nil { // read from another instance than the one that opened it
		var err error
		if streamURL, err = rebase(streamURL, cl.ep.baseFor(c.idx, roleStream, 0)); err != nil {
			return fmt.Errorf("streamUrl: %w", err)
		}
	}
	ws, _, err := cl.dialer.DialContext(ctx, streamURL, nil)
	if err != nil {
		return fmt.Errorf("dial the stream: %w", err)
	}
	c.ws = ws
	return nil
}

// postJSON posts body with an optional bearer token and decodes a 2xx answer into out.
func (cl *client) postJSON(ctx context.Context, u, bearer string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("post %s: read the answer: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post %s: status %d: %.200s", u, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("post %s: decode the answer: %w", u, err)
	}
	return nil
}

// activitiesURL is c's activities on base.
func (cl *client) activitiesURL(base string, c *conv) string {
	if cl.ep.kind == KindOfflineDirectLine {
		return base + "/directline/conversations/" + url.PathEscape(c.id) + "/activities"
	}
	return base + "/v3/directline/conversations/" + url.PathEscape(c.id) + "/activities"
}

// send makes send n of c, due at (unix ns), and records the outcome.
func (cl *client) send(ctx context.Context, c *conv, n, at int64) {
	body := appendMessage(make([]byte, 0, 192), c.user, n, at, cl.ep.cluster != nil)
	var err error
	kind := ""
	if cl.ep.kind == KindRelay {
		c.wmu.Lock()
		_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err = c.ws.WriteMessage(websocket.TextMessage, body)
		c.wmu.Unlock()
		if err != nil {
			kind = "relay write: " + classify(err)
		}
	} else if cl.ep.cluster != nil {
		kind, err = cl.postCluster(ctx, c, body)
	} else {
		kind, err = cl.postTo(ctx, cl.ep.base, c, body)
	}
	now := time.Now().UnixNano()
	if err != nil {
		c.mark(n, stFailed)
		cl.fails.Add(1)
		cl.fail(kind, err)
		return
	}
	c.mark(n, stAcked)
	cl.acks.Add(1)
	if at >= cl.measureFrom.Load() && at < cl.measureTo.Load() {
		cl.ackLat.Load().record(time.Duration(now - at))
	}
	if cl.mode == ModePoll {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// postTo sends one activity over HTTP to base; it returns the kind of error and the error.
func (cl *client) postTo(ctx context.Context, base string, c *conv, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cl.activitiesURL(base, c), bytes.NewReader(body))
	if err != nil {
		return "post: request", err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return "post: " + classify(err), err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Sprintf("post: status %d", resp.StatusCode), fmt.Errorf("post: status %d", resp.StatusCode)
	}
	return "", nil
}

// classify names a transport error briefly, for the error counts.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	}
	return "error"
}

// handle counts the generator messages in data, which arrived for c.
func (cl *client) handle(c *conv, data []byte) int {
	now := time.Now().UnixNano()
	texts := scanMessages(data, func(s seen) {
		if cl.expectPrefix && !s.reply {
			cl.own.Add(1) // the customer's own activity, echoed on the stream as Direct Line does
			return
		}
		switch c.received(s.n) {
		case 0:
			cl.unknown.Add(1)
		case 1:
			cl.replies.Add(1)
			if s.at >= cl.measureFrom.Load() && s.at < cl.measureTo.Load() {
				d := time.Duration(now - s.at)
				cl.lat.Load().record(d)
				cl.window.Load().record(d)
			}
			select {
			case c.replied <- struct{}{}:
			default:
			}
		default:
			cl.dups.Add(1)
		}
	})
	cl.texts.Add(int64(texts))
	return texts
}

// read receives c's stream until it closes. On a cluster a broken stream is opened again on
// the next live instance from the last watermark seen.
func (cl *client) read(c *conv) {
	defer cl.wg.Done()
	for {
		c.wmu.Lock()
		ws := c.ws
		c.wmu.Unlock()
		_, data, err := ws.ReadMessage()
		if err != nil {
			if cl.closing.Load() {
				return
			}
			kind := "stream: " + classify(err)
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				kind = fmt.Sprintf("stream: closed %d", ce.Code)
			}
			if cl.ep.cluster != nil {
				if rerr := cl.reconnect(cl.readCtx, c); rerr == nil {
					continue
				}
			}
			c.setBroken()
			cl.fail(kind, err)
			return
		}
		if len(data) == 0 {
			continue // a keep-alive
		}
		cl.frames.Add(1)
		cl.handle(c, data)
		if cl.ep.cluster != nil {
			if wm, ok := scanWatermark(data); ok {
				c.watermark = wm // only this goroutine reads and writes it until the phase's history check
			}
		}
	}
}

// poller polls c's activities after each acknowledged send and every PollInterval.
func (cl *client) poller(c *conv) {
	defer cl.wg.Done()
	// Spread the periodic polls of the conversations over the interval.
	jitter := time.Duration(int64(cl.opts.PollInterval) * int64(c.idx%97) / 97)
	t := time.NewTimer(cl.opts.PollInterval + jitter)
	defer t.Stop()
	for {
		select {
		case <-cl.readCtx.Done():
			return
		case <-c.kick:
		case <-t.C:
			t.Reset(cl.opts.PollInterval)
		}
		cl.poll(cl.readCtx, c)
	}
}

// poll reads c's new activities, page after page.
func (cl *client) poll(ctx context.Context, c *conv) {
	for range 100 {
		u := cl.activitiesURL(cl.ep.baseFor(c.idx, roleStream, 0), c)
		if c.watermark != "" {
			u += "?watermark=" + url.QueryEscape(c.watermark)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			cl.fail("poll: request", err)
			return
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		cl.polls.Add(1)
		resp, err := cl.http.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				cl.fail("poll: "+classify(err), err)
			}
			return
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			cl.fail(fmt.Sprintf("poll: status %d", resp.StatusCode), err)
			return
		}
		texts := cl.handle(c, data)
		if wm, ok := scanWatermark(data); ok {
			c.watermark = wm
		}
		if texts < 500 { // less than a full page: nothing more waiting
			return
		}
	}
}

// close ends the conversations' streams and pollers.
func (cl *client) close() {
	cl.closing.Store(true)
	cl.stop()
	for _, c := range cl.convs {
		if c == nil || c.ws == nil {
			continue
		}
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.ws.Close()
	}
	cl.wg.Wait()
	cl.http.CloseIdleConnections()
}
