package app

import (
	"context"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/metrics"
)

// timedStore is the store as the Hub uses it, timing each operation
// (bfbridge_store_operation_duration_seconds{op}): the Store interface is the one boundary every
// store implementation sits behind, so one wrapper covers memory, SQLite and Redis alike. Watch
// is not timed: it only registers a callback. The admin API and the readiness probe use the
// store directly.
type timedStore struct {
	bridge.Store
	m *metrics.Metrics
}

// timedLeaser is timedStore over a store shared by several processes: the Hub finds its
// leases (bridge.Leaser) through it, untimed.
type timedLeaser struct {
	*timedStore
	bridge.Leaser
}

// timed wraps s; a store with leases keeps them visible. Without metrics it returns s.
func timed(s bridge.Store, m *metrics.Metrics) bridge.Store {
	if m == nil {
		return s
	}
	m.PrepareStoreOps("create_conversation", "put_conversation", "conversation", "conversation_by_leg", "append", "since",
		"last", "ack", "cursor", "pending", "set_timer", "due_timers", "put_value", "value", "values", "put_blob", "blob",
		"conversations", "erase_conversation")
	t := &timedStore{Store: s, m: m}
	if l, ok := s.(bridge.Leaser); ok {
		return timedLeaser{timedStore: t, Leaser: l}
	}
	return t
}

// done records an operation that started at start, whatever its outcome (a store that fails
// shows in the logs and in /readyz).
func (s *timedStore) done(op string, start time.Time, _ error) { s.m.StoreOp(op, start) }

func (s *timedStore) CreateConversation(ctx context.Context, c *bridge.Conversation) (*bridge.Conversation, bool, error) {
	start := time.Now()
	stored, created, err := s.Store.CreateConversation(ctx, c)
	s.done("create_conversation", start, err)
	return stored, created, err
}

func (s *timedStore) PutConversation(ctx context.Context, c *bridge.Conversation) error {
	start := time.Now()
	err := s.Store.PutConversation(ctx, c)
	s.done("put_conversation", start, err)
	return err
}

func (s *timedStore) Conversation(ctx context.Context, id string) (*bridge.Conversation, error) {
	start := time.Now()
	c, err := s.Store.Conversation(ctx, id)
	s.done("conversation", start, err)
	return c, err
}

func (s *timedStore) ConversationByLeg(ctx context.Context, channel, channelConvID string) (*bridge.Conversation, error) {
	start := time.Now()
	c, err := s.Store.ConversationByLeg(ctx, channel, channelConvID)
	s.done("conversation_by_leg", start, err)
	return c, err
}

func (s *timedStore) Append(ctx context.Context, convID string, e bridge.Entry) (int64, bool, error) {
	start := time.Now()
	seq, dup, err := s.Store.Append(ctx, convID, e)
	s.done("append", start, err)
	return seq, dup, err
}

func (s *timedStore) Since(ctx context.Context, convID string, after int64, limit int) ([]bridge.Record, error) {
	start := time.Now()
	recs, err := s.Store.Since(ctx, convID, after, limit)
	s.done("since", start, err)
	return recs, err
}

func (s *timedStore) Last(ctx context.Context, convID string) (int64, error) {
	start := time.Now()
	seq, err := s.Store.Last(ctx, convID)
	s.done("last", start, err)
	return seq, err
}

func (s *timedStore) Ack(ctx context.Context, convID, leg string, seq int64) error {
	start := time.Now()
	err := s.Store.Ack(ctx, convID, leg, seq)
	s.done("ack", start, err)
	return err
}

func (s *timedStore) Cursor(ctx context.Context, convID, leg string) (int64, error) {
	start := time.Now()
	seq, err := s.Store.Cursor(ctx, convID, leg)
	s.done("cursor", start, err)
	return seq, err
}

func (s *timedStore) Pending(ctx context.Context) ([]bridge.PendingLeg, error) {
	start := time.Now()
	p, err := s.Store.Pending(ctx)
	s.done("pending", start, err)
	return p, err
}

func (s *timedStore) SetTimer(ctx context.Context, convID, name string, due time.Time) error {
	start := time.Now()
	err := s.Store.SetTimer(ctx, convID, name, due)
	s.done("set_timer", start, err)
	return err
}

func (s *timedStore) DueTimers(ctx context.Context, now time.Time, limit int) ([]bridge.Timer, error) {
	start := time.Now()
	t, err := s.Store.DueTimers(ctx, now, limit)
	s.done("due_timers", start, err)
	return t, err
}

func (s *timedStore) PutValue(ctx context.Context, convID, key string, value []byte) error {
	start := time.Now()
	err := s.Store.PutValue(ctx, convID, key, value)
	s.done("put_value", start, err)
	return err
}

func (s *timedStore) Value(ctx context.Context, convID, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.Value(ctx, convID, key)
	s.done("value", start, err)
	return v, err
}

func (s *timedStore) Values(ctx context.Context, key string) (map[string][]byte, error) {
	start := time.Now()
	v, err := s.Store.Values(ctx, key)
	s.done("values", start, err)
	return v, err
}

func (s *timedStore) PutBlob(ctx context.Context, convID, id string, b bridge.Blob) error {
	start := time.Now()
	err := s.Store.PutBlob(ctx, convID, id, b)
	s.done("put_blob", start, err)
	return err
}

func (s *timedStore) Blob(ctx context.Context, convID, id string) (bridge.Blob, error) {
	start := time.Now()
	b, err := s.Store.Blob(ctx, convID, id)
	s.done("blob", start, err)
	return b, err
}

func (s *timedStore) Conversations(ctx context.Context, after string, limit int) ([]*bridge.Conversation, error) {
	start := time.Now()
	cs, err := s.Store.Conversations(ctx, after, limit)
	s.done("conversations", start, err)
	return cs, err
}

func (s *timedStore) EraseConversation(ctx context.Context, id string) error {
	start := time.Now()
	err := s.Store.EraseConversation(ctx, id)
	s.done("erase_conversation", start, err)
	return err
}
