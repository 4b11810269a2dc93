package bridge

import (
	"context"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
)

// The Hub as the channels see it. A channel's constructor takes the few of these interfaces it
// needs (usually one interface of its own that embeds them), never the Hub itself nor its Store:
// the Hub implements them all, and what a channel keeps or reads goes through the Hub.

// Receiver takes what arrives on a channel's legs: the Hub, as the channels see it (see
// Hub.Receive).
type Receiver interface {
	Receive(ctx context.Context, from Leg, a *activity.Activity, key string) (id string, err error)
}

// Invoker takes a customer's invoke and returns the bot's answer to it, read from the log (see
// Hub.Invoke): what a customer's channel that answers invokes synchronously needs.
type Invoker interface {
	Invoke(ctx context.Context, from Leg, a *activity.Activity, key string) (id string, resp InvokeResponse, err error)
}

// Conversations reads, starts and changes conversations: what a customer's channel needs beside
// Receive.
type Conversations interface {
	// Conversation returns the conversation with that id, or ErrUnknownConversation.
	Conversation(ctx context.Context, id string) (*Conversation, error)
	// ConversationByLeg returns the conversation one of whose legs is channel/channelConvID,
	// or ErrUnknownConversation.
	ConversationByLeg(ctx context.Context, channel, channelConvID string) (*Conversation, error)
	// Start opens a conversation for a customer leg (see Hub.Start).
	Start(ctx context.Context, id string, customer Leg) (c *Conversation, created bool, err error)
	// Update changes a conversation atomically (see UpdateConversation).
	Update(ctx context.Context, id string, fn func(*Conversation) error) (*Conversation, error)
}

// ContactCenter is the handoff transitions a contact center makes (see Hub.Accept,
// Hub.Requeue, Hub.ReturnToBot, Hub.End, Hub.SetInactivity).
type ContactCenter interface {
	Accept(ctx context.Context, convID string, agent Leg) error
	Requeue(ctx context.Context, convID string) error
	ReturnToBot(ctx context.Context, convID string) error
	End(ctx context.Context, convID string, by Role, end handoff.End) error
	SetInactivity(ctx context.Context, convID string, in Inactivity) error
}

// Logs reads conversation logs, for channels that read them (Direct Line streams and polls, the
// Connector's members and replies). The methods are Store's: see Store.Since, Store.Last and
// Store.Watch.
type Logs interface {
	Since(ctx context.Context, convID string, after int64, limit int) ([]Record, error)
	Last(ctx context.Context, convID string) (int64, error)
	Watch(convID string, after int64, fn func()) (stop func() bool)
}

// ChannelState is a channel's own durable state: small named values and files kept with each
// conversation (or, with convID "", values of the bridge's own) and removed with it. The
// methods are Store's: see Store.PutValue and Store.PutBlob.
type ChannelState interface {
	PutValue(ctx context.Context, convID, key string, value []byte) error
	Value(ctx context.Context, convID, key string) ([]byte, error)
	Values(ctx context.Context, key string) (map[string][]byte, error)
	PutBlob(ctx context.Context, convID, id string, b Blob) error
	Blob(ctx context.Context, convID, id string) (Blob, error)
}

var (
	_ Receiver      = (*Hub)(nil)
	_ Invoker       = (*Hub)(nil)
	_ Conversations = (*Hub)(nil)
	_ ContactCenter = (*Hub)(nil)
	_ Logs          = (*Hub)(nil)
	_ ChannelState  = (*Hub)(nil)
)

// ConversationByLeg returns the conversation one of whose legs is channel/channelConvID.
func (h *Hub) ConversationByLeg(ctx context.Context, channel, channelConvID string) (*Conversation, error) {
	return h.store.ConversationByLeg(ctx, channel, channelConvID)
}

// Since implements Logs: the store's Since.
func (h *Hub) Since(ctx context.Context, convID string, after int64, limit int) ([]Record, error) {
	return h.store.Since(ctx, convID, after, limit)
}

// Last implements Logs: the store's Last.
func (h *Hub) Last(ctx context.Context, convID string) (int64, error) {
	return h.store.Last(ctx, convID)
}

// Watch implements Logs: the store's Watch.
func (h *Hub) Watch(convID string, after int64, fn func()) (stop func() bool) {
	return h.store.Watch(convID, after, fn)
}

// PutValue implements ChannelState: the store's PutValue.
func (h *Hub) PutValue(ctx context.Context, convID, key string, value []byte) error {
	return h.store.PutValue(ctx, convID, key, value)
}

// Value implements ChannelState: the store's Value.
func (h *Hub) Value(ctx context.Context, convID, key string) ([]byte, error) {
	return h.store.Value(ctx, convID, key)
}

// Values implements ChannelState: the store's Values.
func (h *Hub) Values(ctx context.Context, key string) (map[string][]byte, error) {
	return h.store.Values(ctx, key)
}

// PutBlob implements ChannelState: the store's PutBlob.
func (h *Hub) PutBlob(ctx context.Context, convID, id string, b Blob) error {
	return h.store.PutBlob(ctx, convID, id, b)
}

// Blob implements ChannelState: the store's Blob.
func (h *Hub) Blob(ctx context.Context, convID, id string) (Blob, error) {
	return h.store.Blob(ctx, convID, id)
}
