// Package memory is an in-memory bridge.Store for tests and for runs that need no durability.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/internal/enc"
)

// Store is an in-memory bridge.Store. Activities handed to Append are owned by the store
// afterwards and are shared, read-only, with readers.
type Store struct {
	mu    sync.RWMutex
	convs map[string]*bridge.Conversation // id -> a deep copy of the conversation
	byLeg map[string]string               // leg key -> conversation id
	logs  map[string]*convLog
	kv    map[string][]byte
}

type convLog struct {
	recs    []bridge.Record
	idem    map[string]int64
	waiters bridge.Waiters // called on the next append
	cursors map[string]int64
}

var _ bridge.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{convs: map[string]*bridge.Conversation{}, byLeg: map[string]string{}, logs: map[string]*convLog{}, kv: map[string][]byte{}}
}

// PutConversation implements bridge.Store.
func (s *Store) PutConversation(_ context.Context, c *bridge.Conversation) error {
	if c == nil || c.ID == "" {
		return errors.New("memory store: put conversation: no conversation id")
	}
	cp := c.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.convs[c.ID] = cp
	for _, l := range c.Legs() {
		s.byLeg[l.Key()] = c.ID
	}
	return nil
}

// Conversation implements bridge.Store.
func (s *Store) Conversation(_ context.Context, id string) (*bridge.Conversation, error) {
	s.mu.RLock()
	c, ok := s.convs[id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("conversation %q: %w", id, bridge.ErrUnknownConversation)
	}
	return c.Clone(), nil // stored copies are never changed, only replaced
}

// ConversationByLeg implements bridge.Store.
func (s *Store) ConversationByLeg(ctx context.Context, channel, channelConvID string) (*bridge.Conversation, error) {
	s.mu.RLock()
	id, ok := s.byLeg[bridge.Leg{Channel: channel, ConversationID: channelConvID}.Key()]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("leg %s/%s: %w", channel, channelConvID, bridge.ErrUnknownConversation)
	}
	return s.Conversation(ctx, id)
}

func (s *Store) logOf(convID string) *convLog {
	l := s.logs[convID]
	if l == nil {
		l = &convLog{cursors: map[string]int64{}}
		s.logs[convID] = l
	}
	return l
}

// Append implements bridge.Store.
func (s *Store) Append(_ context.Context, convID string, from bridge.Role, a *activity.Activity, idemKey string) (int64, bool, error) {
	body, err := enc.WithoutID(a) // outside the lock; the id is added once the seq is known
	if err != nil {
		return 0, false, fmt.Errorf("memory store: encode activity: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.convs[convID]; !ok {
		return 0, false, fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
	}
	l := s.logOf(convID)
	if idemKey != "" {
		if seq, ok := l.idem[idemKey]; ok {
			a.ID = bridge.FormatActivityID(convID, seq)
			return seq, true, nil
		}
	}
	seq := int64(len(l.recs))
	id := bridge.FormatActivityID(convID, seq)
	raw, err := enc.WithID(body, id)
	if err != nil {
		return 0, false, fmt.Errorf("memory store: encode activity: %w", err)
	}
	a.ID = id
	l.recs = append(l.recs, bridge.Record{Seq: seq, From: from, Activity: a, At: time.Now(), Raw: raw})
	if idemKey != "" {
		if l.idem == nil {
			l.idem = map[string]int64{}
		}
		l.idem[idemKey] = seq
	}
	l.waiters.Fire()
	return seq, false, nil
}

// Since implements bridge.Store.
func (s *Store) Since(_ context.Context, convID string, after int64, limit int) ([]bridge.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.logs[convID]
	if l == nil {
		if _, ok := s.convs[convID]; !ok {
			return nil, fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
		}
		return nil, nil
	}
	start := max(after+1, 0)
	if start >= int64(len(l.recs)) {
		return nil, nil
	}
	end := int64(len(l.recs))
	if limit > 0 && start+int64(limit) < end {
		end = start + int64(limit)
	}
	return append([]bridge.Record(nil), l.recs[start:end]...), nil
}

// Last implements bridge.Store.
func (s *Store) Last(_ context.Context, convID string) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.convs[convID]; !ok {
		return 0, fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
	}
	if l := s.logs[convID]; l != nil {
		return int64(len(l.recs)) - 1, nil
	}
	return -1, nil
}

// Watch implements bridge.Store.
func (s *Store) Watch(convID string, after int64, fn func()) (stop func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logOf(convID)
	if int64(len(l.recs))-1 > after {
		return bridge.FireNow(fn)
	}
	return l.waiters.Add(fn)
}

// Ack implements bridge.Store.
func (s *Store) Ack(_ context.Context, convID, leg string, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logOf(convID)
	if cur, ok := l.cursors[leg]; !ok || seq > cur {
		l.cursors[leg] = seq
	}
	return nil
}

// Cursor implements bridge.Store.
func (s *Store) Cursor(_ context.Context, convID, leg string) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.logs[convID]; l != nil {
		if cur, ok := l.cursors[leg]; ok {
			return cur, nil
		}
	}
	return -1, nil
}

// PutValue implements bridge.Store.
func (s *Store) PutValue(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[key] = append([]byte(nil), value...)
	return nil
}

// Value implements bridge.Store.
func (s *Store) Value(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.kv[key]
	if !ok {
		return nil, fmt.Errorf("value %q: %w", key, bridge.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// Close implements bridge.Store.
func (s *Store) Close() error { return nil }
