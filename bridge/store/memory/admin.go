package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bfbridge/bfbridge/bridge"
)

// Conversations implements bridge.Store.
func (s *Store) Conversations(_ context.Context, after string, limit int) ([]*bridge.Conversation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.convs))
	for id := range s.convs {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, strings.Compare)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]*bridge.Conversation, len(ids))
	for i, id := range ids {
		out[i] = s.convs[id].Clone()
	}
	return out, nil
}

// EraseConversation implements bridge.Store.
func (s *Store) EraseConversation(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.convs[id]; !ok {
		return fmt.Errorf("conversation %q: %w", id, bridge.ErrUnknownConversation)
	}
	delete(s.convs, id)
	for k, owner := range s.byLeg {
		if owner == id {
			delete(s.byLeg, k)
		}
	}
	if l := s.logs[id]; l != nil {
		l.waiters.Fire()
		delete(s.logs, id)
	}
	for _, m := range s.kv {
		delete(m, id)
	}
	delete(s.blobs, id)
	return nil
}
