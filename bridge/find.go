package bridge

import (
	"context"
	"time"
)

// Filter selects conversations for administration; its zero value selects every one.
type Filter struct {
	State        State     // "" for any
	Channel      string    // a channel one of the legs is on ("" for any)
	UpdatedSince time.Time // Conversation.Updated at or after (a change of state, legs or context; zero: any time)
	Customer     string    // the customer leg's user id ("" for any)
}

// Match reports whether c is selected.
func (f Filter) Match(c *Conversation) bool {
	switch {
	case f.State != "" && c.State != f.State,
		!f.UpdatedSince.IsZero() && c.Updated.Before(f.UpdatedSince),
		f.Customer != "" && c.Customer.User.ID != f.Customer:
		return false
	case f.Channel == "":
		return true
	}
	for _, l := range c.Legs() {
		if l.Channel == f.Channel {
			return true
		}
	}
	return false
}

// findPage is how many conversations FindConversations reads from the store at a time.
const findPage = 200

// FindConversations pages through the store's conversations after the id after, in id order,
// and returns up to limit (at least 1) that f selects. It reads at most scan conversations
// (0: no bound) before it returns with fewer: next is then the id to go on after, or "" when
// the store holds no more. The stores keep no index but the ids', so a filter costs a scan;
// it is an administrator's tool, not a request path.
func FindConversations(ctx context.Context, s Store, f Filter, after string, limit, scan int) (found []*Conversation, next string, err error) {
	limit = max(limit, 1)
	read := 0
	for {
		page, err := s.Conversations(ctx, after, findPage)
		if err != nil {
			return nil, "", err
		}
		for i, c := range page {
			read++
			after = c.ID
			if f.Match(c) {
				found = append(found, c)
			}
			last := i == len(page)-1 && len(page) < findPage
			if len(found) == limit || (scan > 0 && read >= scan) {
				if last {
					return found, "", nil
				}
				return found, after, nil
			}
		}
		if len(page) < findPage {
			return found, "", nil
		}
	}
}
