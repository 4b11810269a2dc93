package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoChange, returned by an UpdateConversation function, stores nothing and is not an error
// of the update: the conversation is already as the caller wants it.
var ErrNoChange = errors.New("no change")

// maxUpdateTries bounds the compare-and-swap retries of one UpdateConversation.
const maxUpdateTries = 64

// UpdateConversation changes the conversation id atomically: it reads it, calls fn with a copy,
// and stores the copy if nobody changed the conversation meanwhile (Store.PutConversation's
// version check), else reads again and calls fn again. fn must have no effect outside the
// copy, since it may run more than once. It returns the conversation as stored (as read, when fn
// returned ErrNoChange); any other error of fn is returned as it is.
func UpdateConversation(ctx context.Context, s Store, id string, fn func(*Conversation) error) (*Conversation, error) {
	for range maxUpdateTries {
		c, err := s.Conversation(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(c); errors.Is(err, ErrNoChange) {
			return c, nil
		} else if err != nil {
			return c, err
		}
		c.Updated = time.Now().UTC()
		switch err := s.PutConversation(ctx, c); {
		case err == nil:
			return c, nil
		case !errors.Is(err, ErrVersionConflict):
			return nil, fmt.Errorf("update conversation %s: %w", id, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("update conversation %s: %d tries: %w", id, maxUpdateTries, ErrVersionConflict)
}

// Update changes a conversation atomically (see UpdateConversation), for channels that keep
// what they learn about it (context variables, the customer's name).
func (h *Hub) Update(ctx context.Context, id string, fn func(*Conversation) error) (*Conversation, error) {
	return UpdateConversation(ctx, h.store, id, fn)
}
