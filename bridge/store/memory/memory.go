// Package memory is an in-memory bridge.Store for tests and for runs that need no durability.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

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
	kv    map[string]map[string][]byte // key -> conversation id ("" for the bridge's own) -> value
	blobs map[string]map[string]bridge.Blob
}

type convLog struct {
	recs      []bridge.Record
	idem      map[string]int64
	waiters   bridge.Waiters // called on the next append
	cursors   map[string]int64
	addressed map[string]int64 // leg -> the highest seq addressed to it
	timers    map[string]time.Time
}

var _ bridge.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{convs: map[string]*bridge.Conversation{}, byLeg: map[string]string{}, logs: map[string]*convLog{},
		kv: map[string]map[string][]byte{}, blobs: map[string]map[string]bridge.Blob{}}
}

// CreateConversation implements bridge.Store.
func (s *Store) CreateConversation(_ context.Context, c *bridge.Conversation) (*bridge.Conversation, bool, error) {
	if c == nil || c.ID == "" {
		return nil, false, errors.New("memory store: create conversation: no conversation id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.convs[c.ID]; ok {
		return old.Clone(), false, nil
	}
	for _, l := range c.Legs() {
		if id, taken := s.byLeg[l.Key()]; taken && id != c.ID {
			return nil, false, fmt.Errorf("memory store: leg %s: %w", l.Key(), bridge.ErrLegTaken)
		}
	}
	c.Version = 1
	s.convs[c.ID] = c.Clone()
	for _, l := range c.Legs() {
		s.byLeg[l.Key()] = c.ID
	}
	return c.Clone(), true, nil
}

// PutConversation implements bridge.Store.
func (s *Store) PutConversation(_ context.Context, c *bridge.Conversation) error {
	if c == nil || c.ID == "" {
		return errors.New("memory store: put conversation: no conversation id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.convs[c.ID]
	switch {
	case !ok:
		return fmt.Errorf("conversation %q: %w", c.ID, bridge.ErrUnknownConversation)
	case old.Version != c.Version:
		return fmt.Errorf("conversation %q at version %d, not %d: %w", c.ID, old.Version, c.Version, bridge.ErrVersionConflict)
	}
	c.Version++
	s.convs[c.ID] = c.Clone()
	for _, l := range c.Legs() {
		if _, taken := s.byLeg[l.Key()]; !taken {
			s.byLeg[l.Key()] = c.ID
		}
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
		l = &convLog{cursors: map[string]int64{}, addressed: map[string]int64{}, timers: map[string]time.Time{}}
		s.logs[convID] = l
	}
	return l
}

// Append implements bridge.Store.
func (s *Store) Append(_ context.Context, convID string, e bridge.Entry) (int64, bool, error) {
	a, idemKey := e.Activity, e.Key
	if a == nil {
		return 0, false, errors.New("memory store: append: nil activity")
	}
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
	l.recs = append(l.recs, bridge.Record{Seq: seq, From: e.From, Activity: a, At: time.Now(), To: e.To, Raw: raw, Trace: e.Trace})
	for _, leg := range e.To {
		l.addressed[leg] = seq
	}
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
	if _, ok := s.convs[convID]; !ok { // a watch makes a log of its own
		return nil, fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
	}
	l := s.logs[convID]
	if l == nil {
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

// Ack implements bridge.Store. It returns ErrUnknownConversation for a conversation that does
// not exist, so that no cursor predates its conversation.
func (s *Store) Ack(_ context.Context, convID, leg string, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.convs[convID]; !ok {
		return fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
	}
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

// Pending implements bridge.Store.
func (s *Store) Pending(_ context.Context) ([]bridge.PendingLeg, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []bridge.PendingLeg
	for id, l := range s.logs {
		for leg, last := range l.addressed {
			cur, ok := l.cursors[leg]
			if !ok {
				cur = -1
			}
			if last > cur {
				out = append(out, bridge.PendingLeg{ConversationID: id, Leg: leg, Cursor: cur, Last: last})
			}
		}
	}
	return out, nil
}

// SetTimer implements bridge.Store.
func (s *Store) SetTimer(_ context.Context, convID, name string, due time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.convs[convID]; !ok {
		return fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
	}
	l := s.logOf(convID)
	if due.IsZero() {
		delete(l.timers, name)
	} else {
		l.timers[name] = due
	}
	return nil
}

// DueTimers implements bridge.Store. It scans every conversation: the memory store is for tests.
func (s *Store) DueTimers(_ context.Context, now time.Time, limit int) ([]bridge.Timer, error) {
	s.mu.RLock()
	var out []bridge.Timer
	for id, l := range s.logs {
		for name, due := range l.timers {
			if !due.After(now) {
				out = append(out, bridge.Timer{ConversationID: id, Name: name, Due: due})
			}
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b bridge.Timer) int { return a.Due.Compare(b.Due) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// PutValue implements bridge.Store.
func (s *Store) PutValue(_ context.Context, convID, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if convID != "" {
		if _, ok := s.convs[convID]; !ok {
			return fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
		}
	}
	if value == nil {
		delete(s.kv[key], convID)
		return nil
	}
	if s.kv[key] == nil {
		s.kv[key] = map[string][]byte{}
	}
	s.kv[key][convID] = bytes.Clone(value)
	return nil
}

// Value implements bridge.Store.
func (s *Store) Value(_ context.Context, convID, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.kv[key][convID]
	if !ok {
		return nil, fmt.Errorf("value %q of %q: %w", key, convID, bridge.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// Values implements bridge.Store.
func (s *Store) Values(_ context.Context, key string) (map[string][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(s.kv[key]))
	for id, v := range s.kv[key] {
		out[id] = bytes.Clone(v)
	}
	return out, nil
}

// PutBlob implements bridge.Store.
func (s *Store) PutBlob(_ context.Context, convID, id string, b bridge.Blob) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.convs[convID]; !ok {
		return fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
	}
	if s.blobs[convID] == nil {
		s.blobs[convID] = map[string]bridge.Blob{}
	}
	s.blobs[convID][id] = bridge.Blob{ContentType: b.ContentType, Data: bytes.Clone(b.Data)}
	return nil
}

// Blob implements bridge.Store.
func (s *Store) Blob(_ context.Context, convID, id string) (bridge.Blob, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.blobs[convID][id]
	if !ok {
		return bridge.Blob{}, fmt.Errorf("file %q of %q: %w", id, convID, bridge.ErrNotFound)
	}
	return bridge.Blob{ContentType: b.ContentType, Data: bytes.Clone(b.Data)}, nil
}

// Close implements bridge.Store.
func (s *Store) Close() error { return nil }
