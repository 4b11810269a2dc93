package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
)

// A Leg is one side of a bridged conversation, as its channel knows it.
type Leg struct {
	Channel        string                  `json:"channel"`        // registered channel name: "directline", "botframework", …
	ConversationID string                  `json:"conversationId"` // the channel's own conversation id
	ServiceURL     string                  `json:"serviceUrl,omitempty"`
	User           activity.ChannelAccount `json:"user"`
	Bot            activity.ChannelAccount `json:"bot"`
	// Identity is what the customer's site vouched for about the customer of this leg, or nil
	// for an anonymous visitor. Only a customer's leg carries one.
	Identity *Identity `json:"identity,omitempty"`
}

// Identity is a verified customer: the site's own server, which signed the customer in, said
// who they are when it asked for their Direct Line token (with the secret, never the customer
// themselves). Contact centers use it to link the chat to an existing contact; the leg's
// User.ID is the customer's stable id.
type Identity struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Key identifies the leg across channels.
func (l Leg) Key() string { return l.Channel + "/" + l.ConversationID }

// IsZero reports whether the leg is unset.
func (l Leg) IsZero() bool { return l.Channel == "" }

// A Channel speaks one protocol. The Hub calls Send to deliver an activity on a leg; the channel
// calls Hub.Receive with what arrives from its side.
type Channel interface {
	Name() string
	// Send delivers a to the leg and returns the id the far side gave it, if any. It returns a
	// *DeliveryError when the far side refused or failed.
	Send(ctx context.Context, to Leg, a *activity.Activity) (id string, err error)
}

// Role is a party's role in a conversation.
type Role string

// Roles.
const (
	RoleCustomer Role = "customer"
	RoleBot      Role = "bot"
	RoleAgent    Role = "agent"
)

// State is where a conversation is in its life.
type State string

// Conversation states (DESIGN.md §3).
const (
	StateBot        State = "bot"        // the bot is talking with the customer
	StateEscalating State = "escalating" // the bot asked for a human; the escalation is being placed
	StateQueued     State = "queued"     // waiting for an agent
	StateAgent      State = "agent"      // an agent is talking with the customer
	StateHandedOff  State = "handedOff"  // the contact center owns routing from here (T1)
	StateEnded      State = "ended"
)

// Conversation is one bridged conversation: its legs, its state and context. The Hub stores it
// before acting on a change.
type Conversation struct {
	ID       string `json:"id"`
	State    State  `json:"state"`
	Customer Leg    `json:"customer"`
	Bot      Leg    `json:"bot"`
	Agent    *Leg   `json:"agent,omitempty"`
	// Context holds routing context variables, by exact (case-sensitive) name.
	Context handoff.Variables `json:"context,omitempty"`
	// EscalationDialect is the dialect the bot escalated in, so that the bot hears back in kind.
	EscalationDialect handoff.Dialect `json:"escalationDialect,omitempty"`
	// Inactivity overrides the Hub's inactivity rule for this conversation, when set.
	Inactivity *Inactivity `json:"inactivity,omitempty"`
	// BotGreeted is set once the bot has been told that the members joined.
	BotGreeted bool `json:"botGreeted,omitempty"`
	// Dead lists the deliveries that failed for good, newest last (at most MaxDead).
	Dead    []DeadLetter `json:"dead,omitempty"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	// Version is the stored version, for compare-and-swap updates (Store.PutConversation): 0
	// before the conversation is created, then 1 and one more with every update.
	Version int64 `json:"version"`
}

// DeadLetter is a record the outbox gave up delivering to a leg, and why.
type DeadLetter struct {
	Leg    string    `json:"leg"`
	Seq    int64     `json:"seq"`
	Status int       `json:"status,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// MaxDead is how many dead letters a conversation keeps (the oldest are dropped).
const MaxDead = 20

// LegOf returns the role of the leg in c, or false when the leg is not part of c.
func (c *Conversation) LegOf(l Leg) (Role, bool) {
	switch {
	case sameKey(l, c.Customer):
		return RoleCustomer, true
	case !c.Bot.IsZero() && sameKey(l, c.Bot):
		return RoleBot, true
	case c.Agent != nil && sameKey(l, *c.Agent):
		return RoleAgent, true
	}
	return "", false
}

// sameKey reports whether a.Key() == b.Key() without building the keys (every activity the
// Hub receives asks, several times).
func sameKey(a, b Leg) bool {
	switch {
	case len(a.Channel)+len(a.ConversationID) != len(b.Channel)+len(b.ConversationID):
		return false
	case a.Channel == b.Channel:
		return a.ConversationID == b.ConversationID
	}
	return a.Key() == b.Key() // a name with a slash in it may still make the same key
}

// LegWithKey returns c's leg whose Key is key, found without building keys.
func (c *Conversation) LegWithKey(key string) (Leg, bool) {
	switch {
	case c.Customer.hasKey(key):
		return c.Customer, true
	case !c.Bot.IsZero() && c.Bot.hasKey(key):
		return c.Bot, true
	case c.Agent != nil && c.Agent.hasKey(key):
		return *c.Agent, true
	}
	return Leg{}, false
}

// hasKey reports whether l.Key() == key without building the key.
func (l Leg) hasKey(key string) bool {
	n := len(l.Channel)
	return len(key) == n+1+len(l.ConversationID) && key[:n] == l.Channel && key[n] == '/' && key[n+1:] == l.ConversationID
}

// Legs returns every leg of c.
func (c *Conversation) Legs() []Leg {
	legs := []Leg{c.Customer}
	if !c.Bot.IsZero() {
		legs = append(legs, c.Bot)
	}
	if c.Agent != nil {
		legs = append(legs, *c.Agent)
	}
	return legs
}

// Errors of the core. They are matched with errors.Is.
var (
	// ErrUnknownConversation: no conversation has that id or leg.
	ErrUnknownConversation = errors.New("unknown conversation")
	// ErrConversationEnded: the conversation has ended and takes no more activities.
	ErrConversationEnded = errors.New("conversation ended")
	// ErrUnknownChannel: no channel is registered under the leg's name.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrNotFound: the store holds no value under that key.
	ErrNotFound = errors.New("not found")
)

// DeliveryError is a failed delivery to a leg, with what the far side answered. Status is the
// HTTP status the far side returned (0 when it never answered); Timeout is set when it did not
// answer in time. Retryable says whether sending again may help.
type DeliveryError struct {
	Leg       string
	Status    int
	Timeout   bool
	Retryable bool
	// RetryAfter is how long the far side asked to wait before sending again (Retry-After), if it did.
	RetryAfter time.Duration
	Err        error
}

func (e *DeliveryError) Error() string {
	switch {
	case e.Timeout:
		return fmt.Sprintf("deliver to %s: timed out: %v", e.Leg, e.Err)
	case e.Status != 0:
		return fmt.Sprintf("deliver to %s: %d %s: %v", e.Leg, e.Status, http.StatusText(e.Status), e.Err)
	}
	return fmt.Sprintf("deliver to %s: %v", e.Leg, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// FormatActivityID returns the id of the activity at seq in a conversation: the Direct Line form
// "{conversationId}|{seq:%07d}" (directline.md §3), ordinal-comparable within the conversation (A2032).
func FormatActivityID(convID string, seq int64) string {
	if seq < 0 {
		return fmt.Sprintf("%s|%07d", convID, seq) // never a stored one; kept as it always read
	}
	// without fmt: every append makes one (TestFormatActivityID holds it to the format above)
	var digits [20]byte
	n := strconv.AppendInt(digits[:0], seq, 10)
	var b strings.Builder
	b.Grow(len(convID) + 1 + max(len(n), 7))
	b.WriteString(convID)
	b.WriteByte('|')
	for range 7 - len(n) {
		b.WriteByte('0')
	}
	b.Write(n)
	return b.String()
}

// Clone returns a deep copy of c, for stores that keep conversations in memory: a caller may
// change its copy without touching the stored one. Times lose their monotonic reading, as they
// would through JSON.
func (c *Conversation) Clone() *Conversation {
	if c == nil {
		return nil
	}
	d := *c
	d.Customer = c.Customer.clone()
	d.Bot = c.Bot.clone()
	if c.Agent != nil {
		a := c.Agent.clone()
		d.Agent = &a
	}
	d.Context = c.Context.Clone()
	d.Dead = slices.Clone(c.Dead)
	if c.Inactivity != nil {
		in := *c.Inactivity
		d.Inactivity = &in
	}
	d.Created, d.Updated = c.Created.Round(0), c.Updated.Round(0)
	return &d
}

func (l Leg) clone() Leg {
	l.User, l.Bot = cloneAccount(l.User), cloneAccount(l.Bot)
	if l.Identity != nil {
		id := *l.Identity
		l.Identity = &id
	}
	return l
}

func cloneAccount(a activity.ChannelAccount) activity.ChannelAccount {
	props, extra := a.Properties, a.Extra
	a.Properties, a.Extra = nil, nil
	if len(props) > 0 {
		a.Properties = bytes.Clone(props)
	}
	if len(extra) > 0 {
		a.Extra = maps.Clone(extra)
	}
	return a
}
