package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/bfbridge/bfbridge/activity"
)

// Record is one entry of a conversation's log.
type Record struct {
	Seq      int64              // the sequence number: the Direct Line watermark
	From     Role               // who sent it
	Activity *activity.Activity // with ID set to FormatActivityID(conv, Seq); shared, read-only
	At       time.Time          // when it was appended
	// To lists the keys of the legs (Leg.Key) that the outbox delivers the record to, in no
	// particular order. Legs whose channel reads the log itself (Direct Line streams and polls)
	// are not listed. Shared, read-only.
	To []string
	// Raw is the activity's JSON as the store keeps it (activity.Marshal of Activity), so that
	// readers that only forward it (Direct Line streams and polls) need not encode it again.
	// Shared, read-only.
	Raw []byte
	// Trace is the W3C trace context of the request that appended the record (Entry.Trace):
	// the delivery's span continues its trace. Never part of the activity.
	Trace string
}

// Addressed reports whether the record is delivered to the leg with that key.
func (r Record) Addressed(legKey string) bool {
	for _, k := range r.To {
		if k == legKey {
			return true
		}
	}
	return false
}

// Entry is what Append adds to a log.
type Entry struct {
	From     Role
	Activity *activity.Activity
	// Key is the idempotency key: a repeated non-empty key returns the first record instead of
	// appending another (a client's retried POST, a webhook delivered twice).
	Key string
	// To: see Record.To.
	To []string
	// Trace is the W3C trace context (a traceparent header value; see internal/tracing.Carry)
	// of the request that appends the record, "" when it is not traced. Stores keep it beside
	// the activity, never in it, so it reaches no peer as activity content; Since returns it.
	Trace string
}

// Timer is a conversation's named deadline (inactivity, an offer's timeout, a token refresh).
type Timer struct {
	ConversationID string
	Name           string
	Due            time.Time
}

// PendingLeg is a leg whose log holds records addressed to it past its cursor: outbound
// delivery to resume.
type PendingLeg struct {
	ConversationID string
	Leg            string // Leg.Key
	Cursor         int64  // the leg's cursor (-1: nothing acknowledged)
	Last           int64  // the highest sequence number addressed to the leg
}

// Blob is a file kept for a conversation (an upload), with its content type.
type Blob struct {
	ContentType string
	Data        []byte
}

// Errors of the Store contract, matched with errors.Is.
var (
	// ErrVersionConflict: PutConversation was given a conversation whose version is not the
	// stored one (someone else changed it since it was read). UpdateConversation retries.
	ErrVersionConflict = errors.New("conversation changed concurrently")
	// ErrLegTaken: CreateConversation was given a leg that another conversation already has.
	ErrLegTaken = errors.New("leg belongs to another conversation")
	// ErrStoreUnavailable: the store cannot be reached now (its server is down, restarting or
	// too slow). A write that failed so may or may not have happened; retrying it is safe
	// (idempotency keys, versions). Channels answer 503 with Retry-After, never a wrong answer.
	ErrStoreUnavailable error = unavailableError{}
)

// unavailableError is ErrStoreUnavailable: its Unavailable method tells HTTP servers (the
// Connector kit's WriteError) to answer 503 with Retry-After.
type unavailableError struct{}

func (unavailableError) Error() string     { return "store unavailable" }
func (unavailableError) Unavailable() bool { return true }

// Store keeps conversations, their logs, the outbox cursors, timers, values and files. It is
// the only state of the bridge that matters: a bridge restarted on the same store (or another
// instance on a shared one) carries on where it stopped; what else is in memory is a cache.
// Implementations are safe for concurrent use and satisfy the contract storetest.Run checks.
type Store interface {
	// CreateConversation stores a new conversation with Version 1 (c.Version is set) and indexes
	// it by each of its legs. When a conversation with c.ID exists already, it returns that one
	// with created false and stores nothing: of two concurrent creations exactly one is created.
	// A leg another conversation already holds makes it fail with ErrLegTaken.
	CreateConversation(ctx context.Context, c *Conversation) (stored *Conversation, created bool, err error)
	// PutConversation replaces a conversation if its stored Version is still c.Version, stores
	// it with the next version (and sets c.Version to it), and indexes any new leg; otherwise it
	// fails with ErrVersionConflict (ErrUnknownConversation when there is none). Use
	// UpdateConversation, which reads, changes and retries.
	PutConversation(ctx context.Context, c *Conversation) error
	// Conversation returns a copy of the conversation with that id, or ErrUnknownConversation.
	Conversation(ctx context.Context, id string) (*Conversation, error)
	// ConversationByLeg returns a copy of the conversation one of whose legs is channel/channelConvID,
	// or ErrUnknownConversation.
	ConversationByLeg(ctx context.Context, channel, channelConvID string) (*Conversation, error)

	// Append adds e to the end of the conversation's log, assigns the next sequence number
	// (from 0) and sets e.Activity.ID to FormatActivityID(convID, seq). It is durable when it
	// returns. A repeated non-empty e.Key returns the first record's seq with dup set (and
	// that record's id in e.Activity.ID), and appends nothing. The store may keep e.Activity and
	// e.To (and hand them to readers): the caller must not change them afterwards.
	Append(ctx context.Context, convID string, e Entry) (seq int64, dup bool, err error)
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

	// Ack records that leg has been delivered (or has given up on) everything addressed to it up
	// to seq; Cursor reads it back (-1 when nothing was acknowledged), so that delivery resumes
	// after a crash without loss. A cursor never moves back. Ack may return before the cursor is
	// durable: after a crash, a leg may be delivered again what it had already been delivered,
	// under the same ids, but never less.
	Ack(ctx context.Context, convID, leg string, seq int64) error
	Cursor(ctx context.Context, convID, leg string) (int64, error)
	// Pending returns every leg whose log holds records addressed to it (Entry.To) past its
	// cursor, in no particular order: the deliveries to resume at start.
	Pending(ctx context.Context) ([]PendingLeg, error)

	// SetTimer sets the conversation's timer name to due, replacing its earlier due time; a
	// zero due removes it. DueTimers returns up to limit timers (0: all) due at or before now,
	// earliest first. Timers go with their conversation.
	SetTimer(ctx context.Context, convID, name string, due time.Time) error
	DueTimers(ctx context.Context, now time.Time, limit int) ([]Timer, error)

	// PutValue durably stores a small named value of a conversation (state a channel keeps
	// across restarts: a hosted bot's Direct Line session, Omnichannel's reply ids, the routing
	// state of a task), or with convID "" one of the bridge's own; a nil value removes it. Value
	// reads it back or returns ErrNotFound; Values returns every conversation's value under key,
	// by conversation id. A conversation's values go with it.
	PutValue(ctx context.Context, convID, key string, value []byte) error
	Value(ctx context.Context, convID, key string) ([]byte, error)
	Values(ctx context.Context, key string) (map[string][]byte, error)

	// PutBlob stores a file of a conversation under id; Blob reads it back or returns
	// ErrNotFound. Files go with their conversation. Callers enforce the size limits.
	PutBlob(ctx context.Context, convID, id string, b Blob) error
	Blob(ctx context.Context, convID, id string) (Blob, error)

	// Conversations returns up to limit conversations (0: all) whose ids sort after after
	// ("" starts from the first), in id order: a paged scan for administration (the admin API
	// filters it by state, channel, time or customer).
	Conversations(ctx context.Context, after string, limit int) ([]*Conversation, error)
	// EraseConversation removes the conversation and everything of it: its log, its legs' index
	// entries (a new conversation may take the legs), idempotency keys, cursors, pending
	// deliveries, timers, values, files and leases. Afterwards it is unknown to every method, and
	// watchers of it are woken. It returns ErrUnknownConversation when there is none. An erase
	// that failed may have removed part of it; erasing again finishes it.
	EraseConversation(ctx context.Context, id string) error

	// Close releases the store.
	Close() error
}
