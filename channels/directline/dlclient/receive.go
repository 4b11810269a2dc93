package dlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/ctxutil"
)

// maxDelivered bounds State.Delivered: ids taken since the last watermark (frames without a
// watermark, such as typing, are few).
const maxDelivered = 256

// activitySet is a decoded ActivitySet: a websocket frame or a page of GET /activities.
type activitySet struct {
	Activities []*activity.Activity
	Watermark  string // "" when the frame had none: the last one stays
	Skipped    int    // activities that were not JSON activity objects
}

// parseActivitySet reads one frame of the stream. An empty or blank frame is a keep-alive, and
// a JSON object with neither activities nor watermark is one of the "additional types" the
// protocol reserves: both give ok false and no error (directline.md §2). A watermark may be a
// string, as Direct Line sends it, or a number, as some servers do; null is none. Activities
// that do not decode are skipped and counted.
func parseActivitySet(b []byte) (set activitySet, ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return set, false, nil
	}
	var wire struct {
		Activities []json.RawMessage `json:"activities"`
		Watermark  json.RawMessage   `json:"watermark"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return set, false, fmt.Errorf("the frame is not an ActivitySet: %w", err)
	}
	if wire.Activities == nil && len(wire.Watermark) == 0 {
		return set, false, nil
	}
	set.Watermark = watermarkString(wire.Watermark)
	for _, raw := range wire.Activities {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			set.Skipped++
			continue
		}
		a, err := activity.Decode(raw)
		if err != nil {
			set.Skipped++
			continue
		}
		set.Activities = append(set.Activities, a)
	}
	return set, true, nil
}

// watermarkString reads a watermark: a string, or a number written as one.
func watermarkString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}

// stopError ends a session's receive loop for a reason.
type stopError struct {
	reason CloseReason
	err    error
}

func (e *stopError) Error() string { return e.reason.String() + ": " + e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

var errBotEnded = errors.New("the bot ended the conversation")

// handleSet hands a set's activities to the Hub, in order, then keeps its watermark when it
// has one.
func (s *session) handleSet(ctx context.Context, set activitySet) error {
	if set.Skipped > 0 {
		s.log.Warn().Int("skipped", set.Skipped).Str("watermark", set.Watermark).Msg("activities that do not decode were skipped")
	}
	for _, a := range set.Activities {
		if err := s.take(ctx, a); err != nil {
			return err
		}
	}
	if set.Watermark == "" {
		return nil
	}
	s.mu.Lock()
	changed := s.st.Watermark != set.Watermark || len(s.st.Delivered) > 0
	s.st.Watermark, s.st.Delivered = set.Watermark, nil
	s.mu.Unlock()
	if changed {
		s.persist(ctx)
	}
	return nil
}

// take hands one upstream activity to the Hub, unless it was handled before (dedupe by id) or
// is the echo of the customer's own post (by the id the POST returned, or by from.id). A Hub
// that cannot append is retried with backoff, so that nothing is skipped; a Hub that has ended
// the conversation stops the session.
func (s *session) take(ctx context.Context, a *activity.Activity) error {
	upID := a.ID
	s.mu.Lock()
	if upID != "" && s.seen.has(upID) {
		s.mu.Unlock()
		s.log.Debug().Str("upstream_activity_id", upID).Msg("duplicate skipped")
		return nil
	}
	if (upID != "" && s.posted.has(upID)) || (a.From != nil && a.From.ID != "" && a.From.ID == s.userID) {
		if cid := a.ClientActivityID(); cid != "" {
			if br, ok := s.pending[cid]; ok && upID != "" {
				s.links.add(upID, br)
			}
			delete(s.pending, cid)
		}
		if upID != "" {
			s.seen.add(upID)
		}
		s.mu.Unlock()
		return nil
	}
	if a.ReplyToID != "" {
		a.ReplyToID = s.links.bridgeOf(a.ReplyToID)
	}
	s.mu.Unlock()

	// What the upstream assigned stays upstream; the Hub gives the activity its own id.
	a.ID, a.ServiceURL, a.ChannelID, a.Conversation = "", "", "", nil
	if u := s.leg.User; u.ID != "" {
		a.Recipient = &activity.ChannelAccount{ID: u.ID, Name: u.Name}
	}
	typ := a.Type
	var id string
	for attempt := 0; ; attempt++ {
		var err error
		id, err = s.c.hub.Receive(ctx, s.leg, a, upstreamKey(upID))
		if err == nil || id != "" {
			if err != nil {
				s.log.Warn().Err(err).Str("activity_id", id).Msg("taken, but not delivered to the customer")
			}
			break
		}
		if errors.Is(err, bridge.ErrConversationEnded) || errors.Is(err, bridge.ErrUnknownConversation) {
			return &stopError{reason: ReasonEnded, err: err}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn().Err(err).Int("attempt", attempt+1).Str("upstream_activity_id", upID).Msg("the hub did not take the bot's activity; retrying")
		if ctxutil.Sleep(ctx, s.c.backoff(attempt)) != nil {
			return ctx.Err()
		}
	}
	s.mu.Lock()
	if upID != "" {
		s.seen.add(upID)
		if id != "" {
			s.links.add(upID, id)
		}
		s.st.Delivered = append(s.st.Delivered, upID)
		if n := len(s.st.Delivered); n > maxDelivered {
			s.st.Delivered = s.st.Delivered[n-maxDelivered:]
		}
	}
	s.mu.Unlock()
	s.persist(ctx)
	s.log.Debug().Str("activity_id", id).Str("upstream_activity_id", upID).Str("type", typ).Msg("bot activity taken")
	if typ == activity.TypeEndOfConversation {
		return &stopError{reason: ReasonEnded, err: errBotEnded}
	}
	return nil
}

// idRing is a set of the last n ids. It grows as ids come (most conversations see few), so that
// an idle session holds next to nothing.
type idRing struct {
	set   map[string]struct{}
	order []string
	n     int
	next  int
}

func newIDRing(n int) *idRing {
	return &idRing{set: map[string]struct{}{}, n: n}
}

func (r *idRing) has(id string) bool { _, ok := r.set[id]; return ok }

func (r *idRing) add(id string) {
	if r.has(id) {
		return
	}
	if len(r.order) < r.n {
		r.order = append(r.order, id)
	} else {
		delete(r.set, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % len(r.order)
	}
	r.set[id] = struct{}{}
}

// linkMap maps the last n upstream activity ids to bridge ids and back, so that replyToId
// points at the right activity on each side.
type linkMap struct {
	ring *idRing
	toBr map[string]string
	toUp map[string]string
}

func newLinkMap(n int) *linkMap {
	return &linkMap{ring: newIDRing(n), toBr: map[string]string{}, toUp: map[string]string{}}
}

func (m *linkMap) add(up, br string) {
	if len(m.ring.order) == m.ring.n && !m.ring.has(up) { // the oldest link goes
		old := m.ring.order[m.ring.next]
		delete(m.toUp, m.toBr[old])
		delete(m.toBr, old)
	}
	m.ring.add(up)
	m.toBr[up] = br
	m.toUp[br] = up
}

// recent returns the last n links, oldest first.
func (m *linkMap) recent(n int) []Link {
	order := m.ring.order
	if len(order) == m.ring.n { // full: the oldest is at next
		order = append(order[m.ring.next:len(order):len(order)], order[:m.ring.next]...)
	}
	if len(order) > n {
		order = order[len(order)-n:]
	}
	out := make([]Link, 0, len(order))
	for _, up := range order {
		out = append(out, Link{Upstream: up, Bridge: m.toBr[up]})
	}
	return out
}

// bridgeOf returns the bridge id of an upstream id, or "".
func (m *linkMap) bridgeOf(up string) string { return m.toBr[up] }

// upstreamOf returns the upstream id of a bridge id, or "".
func (m *linkMap) upstreamOf(br string) string { return m.toUp[br] }

// upstreamKey is the idempotency key of an activity with the upstream Direct Line id: one the
// upstream sends again (a replay after a reconnect or a restart) is recorded once.
func upstreamKey(upID string) string {
	if upID == "" {
		return ""
	}
	return "upstream:" + upID
}
