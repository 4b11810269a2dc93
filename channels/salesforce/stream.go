package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

// streams runs one SSE reader per escalated conversation (one per customer token, since each
// customer has a token of their own) while Run runs.
type streams struct {
	ch *Channel

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run and after it returned
	running map[string]*streamRun
	wg      sync.WaitGroup
}

// streamRun is one conversation's reader goroutine.
type streamRun struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newStreams(ch *Channel) *streams {
	return &streams{ch: ch, running: map[string]*streamRun{}}
}

// run resumes a stream for every open session in the store, then runs until ctx ends.
func (ss *streams) run(ctx context.Context) error {
	ss.mu.Lock()
	ss.ctx = ctx
	ss.mu.Unlock()
	all, err := ss.ch.hub.Values(ctx, sessionKey)
	if err != nil {
		return fmt.Errorf("salesforce: stored sessions: %w", err)
	}
	for convID, raw := range all {
		var st sessionState
		if json.Unmarshal(raw, &st) == nil && st.Created && !st.Closed {
			ss.watch(convID)
		}
	}
	<-ctx.Done()
	ss.mu.Lock()
	ss.ctx = nil
	ss.mu.Unlock()
	ss.wg.Wait()
	return nil
}

// watch starts the conversation's stream unless it runs (or Run does not: Run starts it). A
// stream that was stopped but has not returned yet (a new escalation right after an end) is
// replaced.
func (ss *streams) watch(convID string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ctx == nil {
		return
	}
	if old := ss.running[convID]; old != nil && old.ctx.Err() == nil {
		return
	}
	ctx, cancel := context.WithCancel(ss.ctx)
	run := &streamRun{ctx: ctx, cancel: cancel}
	ss.running[convID] = run
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		ss.ch.follow(ctx, convID)
		ss.mu.Lock()
		if ss.running[convID] == run {
			delete(ss.running, convID)
		}
		ss.mu.Unlock()
		cancel()
	}()
}

// stop ends the conversation's stream, if it runs.
func (ss *streams) stop(convID string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if run := ss.running[convID]; run != nil {
		run.cancel()
	}
}

// follow reads the conversation's events until it is closed or ctx ends, reconnecting with
// backoff (ReconnectMin ×1.5 per failed try, at most ReconnectMax) and resuming after the last
// event acted on (Last-Event-Id, stored).
func (ch *Channel) follow(ctx context.Context, convID string) {
	s, err := ch.sessionFor(ctx, convID)
	if err != nil {
		ch.log.Warn().Err(err).Str("conv_id", convID).Msg("no session to stream")
		return
	}
	if err := ch.settled(ctx, convID); err != nil {
		return
	}
	wait := ch.cfg.ReconnectMin
	for ctx.Err() == nil && !s.state().Closed {
		progressed, err := ch.streamOnce(ctx, s)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrSessionLost) {
			ch.lost(ctx, s, err)
			return
		}
		if progressed {
			wait = ch.cfg.ReconnectMin
		}
		ch.log.Debug().Err(err).Str("conv_id", convID).Dur("retry_in", wait).Msg("salesforce event stream ended; reconnecting")
		if sleepCtx(ctx, wait) != nil {
			return
		}
		wait = min(time.Duration(float64(wait)*1.5), ch.cfg.ReconnectMax)
	}
}

// settled waits while the Hub still stores the escalation (Escalate has not returned), so
// that an agent's arrival is not overwritten by the escalation's outcome.
func (ch *Channel) settled(ctx context.Context, convID string) error {
	for {
		c, err := ch.hub.Conversation(ctx, convID)
		if err != nil || c.State != bridge.StateEscalating {
			return ctx.Err()
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// streamOnce opens the stream once and reads it until it ends. progressed reports that the
// stream was opened: the next try comes without growing the backoff.
func (ch *Channel) streamOnce(ctx context.Context, s *session) (progressed bool, err error) {
	tok, err := s.token(ctx)
	if err != nil {
		return false, err
	}
	last := ch.lastEventID(ctx, s.convID)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ch.cfg.sseURL(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Org-Id", ch.cfg.orgHeader())
	if last != "" {
		req.Header.Set("Last-Event-Id", last)
	}
	resp, err := ch.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, transportError(ctx, "event stream", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		// Not progress: a stream refused again and again backs off (and so do its renewals).
		return false, s.renew(ctx, tok)
	case resp.StatusCode != http.StatusOK:
		return false, statusError("event stream", resp.StatusCode, resp.Header, nil)
	}
	body := newHeartbeat(resp.Body, ch.cfg.HeartbeatTimeout, cancel)
	defer body.stop()
	err = readSSE(body, last, func(ev sseEvent) error { return ch.onEvent(ctx, s, ev) })
	return true, err
}

// lastEventID returns the stored Last-Event-Id of the conversation ("" when none).
func (ch *Channel) lastEventID(ctx context.Context, convID string) string {
	v, err := ch.hub.Value(ctx, convID, eventKey)
	if err != nil {
		return ""
	}
	return string(v)
}

// onEvent acts on one event, then stores its id: after a crash between the two, the event
// comes again and is recognised (every activity it makes has the entry's idempotency key).
func (ch *Channel) onEvent(ctx context.Context, s *session, ev sseEvent) error {
	env, err := parseEnvelope(ev.Data)
	switch {
	case err != nil:
		ch.log.Debug().Err(err).Str("conv_id", s.convID).Str("event", ev.Type).Msg("event ignored: not a conversation event")
	case !sameID(env.ConversationID, s.state().ConversationID):
		// another conversation of the same customer
	default:
		if env.Entry.Identifier == "" && ev.HasID {
			env.Entry.Identifier = "event/" + ev.ID // the idempotency key, without an entry id
		}
		if err := ch.handle(ctx, s, ev.Type, env); err != nil {
			return err
		}
	}
	if !ev.HasID || ctx.Err() != nil {
		return ctx.Err()
	}
	return ch.hub.PutValue(ctx, s.convID, eventKey, []byte(ev.ID))
}

// lost ends a conversation whose MIAW session cannot be reached any more.
func (ch *Channel) lost(ctx context.Context, s *session, cause error) {
	ch.log.Warn().Err(cause).Str("conv_id", s.convID).Msg("salesforce session lost; ending the conversation")
	_ = s.update(ctx, func(st *sessionState) { st.Closed = true })
	const text = "The connection to the agent was lost."
	a := notice(text)
	if _, err := ch.hub.Receive(ctx, ch.leg(s.convID, *a.From), a, "salesforce:lost"); err != nil && !isDelivery(err) {
		ch.log.Warn().Err(err).Str("conv_id", s.convID).Msg("customer not told of the lost session")
	}
	if err := ch.hub.End(ctx, s.convID, bridge.RoleAgent, endOf(text)); err != nil {
		ch.log.Warn().Err(err).Str("conv_id", s.convID).Msg("lost conversation not ended")
	}
}

// heartbeat cancels a stream that stays silent for longer than its timeout.
type heartbeat struct {
	r     io.Reader
	d     time.Duration
	timer *time.Timer
}

func newHeartbeat(r io.Reader, d time.Duration, cancel context.CancelFunc) *heartbeat {
	return &heartbeat{r: r, d: d, timer: time.AfterFunc(d, cancel)}
}

func (h *heartbeat) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.timer.Reset(h.d)
	}
	return n, err
}

func (h *heartbeat) stop() { h.timer.Stop() }

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
