package dlclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
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
	// Links are the most recent upstream id ↔ bridge id pairs (at most maxStoredLinks, oldest
	// first), so that a resumed session still maps the replyToId of a reply to an activity
	// from before the restart.
	Links []Link `json:"links,omitempty"`
}

// Link pairs an activity's upstream Direct Line id with its bridge id.
type Link struct {
	Upstream string `json:"up"`
	Bridge   string `json:"br"`
}

// maxStoredLinks bounds State.Links: replies point at recent activities.
const maxStoredLinks = 32

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
	// List returns the ids of the conversations with a state, for ResumeAll.
	List(ctx context.Context) ([]string, error)
}

// clone returns a copy of st that shares no slice with it.
func (st State) clone() State {
	st.Delivered, st.Links = slices.Clone(st.Delivered), slices.Clone(st.Links)
	return st
}

// MemoryStore is a WatermarkStore in a map, lost on restart (Config.Store: tests, a client
// whose upstream conversations need not survive one).
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
	return st.clone(), ok, nil
}

// Save implements WatermarkStore.
func (s *MemoryStore) Save(_ context.Context, convID string, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[convID] = st.clone()
	return nil
}

// Delete implements WatermarkStore.
func (s *MemoryStore) Delete(_ context.Context, convID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, convID)
	return nil
}

// List implements WatermarkStore.
func (s *MemoryStore) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	return ids, nil
}

// SessionKey is the conversation value key under which BridgeStore keeps each conversation's
// State (as JSON).
const SessionKey = "dlclient/session"

// BridgeStore is the WatermarkStore over the bridge's conversation values (the Hub's
// ChannelState, kept in its Store): each conversation's State is a value of that conversation
// (SessionKey), swept with it, so that a restarted bridge — or another instance on a shared
// store — resumes the upstream conversations. It is the client's default (see Config.Store).
// The State holds the conversation's Direct Line token: the store must be protected as a
// credential store is.
type BridgeStore struct{ s bridge.ChannelState }

var _ WatermarkStore = (*BridgeStore)(nil)

// NewBridgeStore returns a WatermarkStore that keeps the states in s (the Hub, or a
// bridge.Store).
func NewBridgeStore(s bridge.ChannelState) *BridgeStore { return &BridgeStore{s: s} }

// Load implements WatermarkStore.
func (b *BridgeStore) Load(ctx context.Context, convID string) (State, bool, error) {
	raw, err := b.s.Value(ctx, convID, SessionKey)
	if errors.Is(err, bridge.ErrNotFound) || errors.Is(err, bridge.ErrUnknownConversation) {
		return State{}, false, nil
	} else if err != nil {
		return State{}, false, err
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return State{}, false, fmt.Errorf("decode the stored session of %s: %w", convID, err)
	}
	return st, true, nil
}

// Save implements WatermarkStore.
func (b *BridgeStore) Save(ctx context.Context, convID string, st State) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return b.s.PutValue(ctx, convID, SessionKey, raw)
}

// Delete implements WatermarkStore. A conversation the store no longer has has nothing left
// to forget.
func (b *BridgeStore) Delete(ctx context.Context, convID string) error {
	err := b.s.PutValue(ctx, convID, SessionKey, nil)
	if errors.Is(err, bridge.ErrUnknownConversation) {
		return nil
	}
	return err
}

// List implements WatermarkStore.
func (b *BridgeStore) List(ctx context.Context) ([]string, error) {
	vals, err := b.s.Values(ctx, SessionKey)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(vals))
	for id := range vals {
		ids = append(ids, id)
	}
	return ids, nil
}
