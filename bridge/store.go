package bridge

import (
	"context"
	"time"

	"github.com/bfbridge/bfbridge/activity"
)

// Record is one entry of a conversation's log.
type Record struct {
	Seq      int64              // the sequence number: the Direct Line watermark
	From     Role               // who sent it
	Activity *activity.Activity // with ID set to FormatActivityID(conv, Seq); shared, read-only
	At       time.Time          // when it was appended
	// Raw is the activity's JSON as the store keeps it (activity.Marshal of Activity), so that
	// readers that only forward it (Direct Line streams and polls) need not encode it again.
	// Shared, read-only.
	Raw []byte
}

// Store keeps conversations and their logs. Implementations are safe for concurrent use and
// satisfy the contract that storetest.Run checks.
type Store interface {
	// PutConversation creates or replaces a conversation and indexes it by each of its legs.
	PutConversation(ctx context.Context, c *Conversation) error
	// Conversation returns a copy of the conversation with that id, or ErrUnknownConversation.
	Conversation(ctx context.Context, id string) (*Conversation, error)
	// ConversationByLeg returns a copy of the conversation one of whose legs is channel/channelConvID,
	// or ErrUnknownConversation.
	ConversationByLeg(ctx context.Context, channel, channelConvID string) (*Conversation, error)

	// Append adds a to the end of the conversation's log, assigns the next sequence number
	// (from 0) and sets a.ID to FormatActivityID(convID, seq). It is durable when it returns.
	// A repeated non-empty idemKey returns the first record's seq with dup set, and appends nothing.
	// The store may keep a (and hand it to readers): the caller must not change it afterwards.
	Append(ctx context.Context, convID string, from Role, a *activity.Activity, idemKey string) (seq int64, dup bool, err error)
	// Since returns up to limit records with Seq > after, in order. after = -1 reads from the start.
	// Records' activities and Raw may be shared with other readers: they must not be changed.
	Since(ctx context.Context, convID string, after int64, limit int) ([]Record, error)
	// Last returns the highest sequence number of the log, or -1 when it is empty.
	Last(ctx context.Context, convID string) (int64, error)
	// Watch calls fn once, in a goroutine of its own, when the log holds a record with
	// Seq > after (at once when it already does), or when the store can no longer tell (it
	// closed, or removed the conversation): a wake-up for live readers, which then read with
	// Since, which reports why. stop cancels the call if it has not been made, and reports
	// whether it did. Watching costs no goroutine while it waits.
	Watch(convID string, after int64, fn func()) (stop func() bool)

	// Ack records that leg has been delivered everything up to seq; Cursor reads it back (-1 when
	// nothing was acknowledged), so that delivery resumes after a crash without loss. Ack may
	// return before the cursor is durable: after a crash, a leg may be delivered again what it
	// had already been delivered, under the same ids, but never less.
	Ack(ctx context.Context, convID, leg string, seq int64) error
	Cursor(ctx context.Context, convID, leg string) (int64, error)

	// PutValue durably stores a small named value (state a channel keeps across restarts, such
	// as the routing state of the sandbox contact center); Value reads it back, or returns
	// ErrNotFound.
	PutValue(ctx context.Context, key string, value []byte) error
	Value(ctx context.Context, key string) ([]byte, error)

	// Close releases the store.
	Close() error
}
