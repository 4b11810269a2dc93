package dlclient

import (
	"context"
	"slices"
	"sync"
	"time"
)

// State is what the client keeps about one bridge conversation's upstream Direct Line
// conversation, so that it can resume it — after a reconnect or a restart — without losing or
// repeating what the bot sent.
type State struct {
	// ConversationID is the upstream Direct Line conversation id.
	ConversationID string `json:"conversationId"`
	// UserID is the customer's user id upstream (from.id of what the client posts).
	UserID string `json:"userId"`
	// Watermark is the last non-empty watermark the upstream sent, after the Hub took every
	// activity up to it. Empty: from the start.
	Watermark string `json:"watermark,omitempty"`
	// Delivered lists the upstream activity ids handed to the Hub after Watermark, so that a
	// replay from Watermark skips them.
	Delivered []string `json:"delivered,omitempty"`
	// Token is the conversation's current Direct Line token and Expires when it expires. A
	// durable store must protect it as a credential; it expires within the hour.
	Token   string    `json:"token,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// A WatermarkStore keeps each bridge conversation's State. The client saves it when the
// upstream conversation starts, after each activity it hands to the Hub, and when the token
// changes. Implementations must be safe for concurrent use; a durable one (the bridge's store)
// lets conversations resume across restarts.
type WatermarkStore interface {
	// Load returns the conversation's state, with ok false when there is none.
	Load(ctx context.Context, convID string) (st State, ok bool, err error)
	// Save replaces the conversation's state.
	Save(ctx context.Context, convID string, st State) error
	// Delete forgets the conversation.
	Delete(ctx context.Context, convID string) error
}

// MemoryStore is the default WatermarkStore: a map, lost on restart.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]State
}

var _ WatermarkStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]State{}} }

// Load implements WatermarkStore.
func (s *MemoryStore) Load(_ context.Context, convID string) (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[convID]
	st.Delivered = slices.Clone(st.Delivered)
	return st, ok, nil
}

// Save implements WatermarkStore.
func (s *MemoryStore) Save(_ context.Context, convID string, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Delivered = slices.Clone(st.Delivered)
	s.m[convID] = st
	return nil
}

// Delete implements WatermarkStore.
func (s *MemoryStore) Delete(_ context.Context, convID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, convID)
	return nil
}
