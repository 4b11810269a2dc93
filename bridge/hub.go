package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// HubConfig configures a Hub.
type HubConfig struct {
	// BotChannel is the name of the channel that reaches the bot. Default: "botframework".
	BotChannel string
	// Bot is the bot's account as the customer sees it. Default: {id: "bot", name: "Bot"}.
	Bot activity.ChannelAccount
	// DeliveryTimeout bounds one delivery attempt to a leg, and how long Receive waits for the
	// first attempt of the deliveries it caused. Default: 15s, Azure Bot Service's bot timeout.
	DeliveryTimeout time.Duration
	// RetryFor is how long the outbox keeps retrying a delivery that failed retryably (the far
	// side unreachable, 429, 5xx) before it records it as dead and moves on. Default: 10m.
	RetryFor time.Duration
	// EscalationChannel is the contact center (an Escalator) that takes conversations whose bot
	// asks for a human, unless the customer's own channel is one (Omnichannel, T1). Default: none.
	EscalationChannel string
	// Inactivity is the default inactivity rule of conversations (SetInactivity overrides it per
	// conversation). Default: none. It acts only while Run runs.
	Inactivity Inactivity
	// InactivityTick is how often the store's due timers (inactivity deadlines) are checked.
	// Default: 1s.
	InactivityTick time.Duration
	// LeaseTTL is how long a lease on a leg's outbox or on a timer lasts unless renewed, when the
	// store is shared by several processes (a Leaser): how long a dead process's deliveries
	// wait before another takes them over. Default: DefaultLeaseTTL.
	LeaseTTL time.Duration
	// PendingScan is how often, with a Leaser store, Run looks for legs with pending records
	// that no process delivers (their owner died). Default: DefaultPendingScan.
	PendingScan time.Duration
	// Metrics records appends, deliveries and escalations. Nil: none.
	Metrics *metrics.Metrics
	// Sealer keeps the secrets activities carry toward the bot (a customer's sign-on token)
	// encrypted in the log: Receive seals them before the append, the outbox opens them on the
	// copy it sends a leg. Nil: they are logged as they came.
	Sealer Sealer
}

// Sealer encrypts what an activity carries that must not rest in the log in the clear
// (internal/atrest.Log). Seal changes a in place before it is appended to conversation convID;
// Open returns a with it decrypted — a copy when anything changed, since records are shared.
type Sealer interface {
	Seal(convID string, a *activity.Activity) error
	Open(convID string, a *activity.Activity) (*activity.Activity, error)
}

func (c *HubConfig) defaults() {
	if c.BotChannel == "" {
		c.BotChannel = "botframework"
	}
	if c.Bot.ID == "" {
		c.Bot = activity.ChannelAccount{ID: "bot", Name: "Bot"}
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = 15 * time.Second
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 10 * time.Minute
	}
	if c.InactivityTick <= 0 {
		c.InactivityTick = time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.PendingScan <= 0 {
		c.PendingScan = DefaultPendingScan
	}
}

// Hub relays activities between the legs of conversations by role. See the package doc for
// the flow. A Hub is safe for concurrent use.
type Hub struct {
	cfg    HubConfig
	store  Store
	leaser Leaser // the store, when it is shared by several processes; nil otherwise
	log    zerolog.Logger

	mu       sync.RWMutex
	channels map[string]Channel

	out *outbox
}

// NewHub returns a Hub over store. Channels are added with Register. Deliveries start at once;
// those left pending by an earlier run resume when Run starts.
func NewHub(store Store, cfg HubConfig, log zerolog.Logger) *Hub {
	cfg.defaults()
	h := &Hub{cfg: cfg, store: store, log: log, channels: map[string]Channel{}}
	h.leaser, _ = store.(Leaser)
	h.out = newOutbox(h)
	return h
}

// Register adds a channel. It panics when the name is empty or already registered: that is a
// wiring mistake, found at start-up.
func (h *Hub) Register(ch Channel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := ch.Name()
	if name == "" {
		panic("bridge: channel with an empty name")
	}
	if _, dup := h.channels[name]; dup {
		panic("bridge: channel registered twice: " + name)
	}
	h.channels[name] = ch
}

// Bot returns the bot's account as the customer sees it.
func (h *Hub) Bot() activity.ChannelAccount { return h.cfg.Bot }

func (h *Hub) channel(name string) (Channel, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ch, ok := h.channels[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrUnknownChannel)
	}
	return ch, nil
}

// Conversation returns the conversation with that id.
func (h *Hub) Conversation(ctx context.Context, id string) (*Conversation, error) {
	return h.store.Conversation(ctx, id)
}

// Wait returns once the outbox has nothing left to deliver that it can deliver now (tests;
// a graceful shutdown), or ctx ends.
func (h *Hub) Wait(ctx context.Context) error { return h.out.idle(ctx) }

// Close stops the outbox: deliveries in flight are abandoned (they stay pending in the store and
// resume when a Hub runs on it again) and Close returns once every pump has stopped. Call Wait
// first for a graceful stop. The Hub takes no activities after Close.
func (h *Hub) Close() {
	h.out.cancel()
	h.out.pumps.Wait()
}

// Start opens the conversation id for a customer leg, with a bot leg on the configured bot
// channel, and reports whether it was created (false: it existed; of two concurrent starts one
// creates it). When the customer's user id is known the bot is told at once that the members
// joined; otherwise before the first activity it gets.
func (h *Hub) Start(ctx context.Context, id string, customer Leg) (*Conversation, bool, error) {
	if c, err := h.store.Conversation(ctx, id); err == nil {
		return c, false, nil
	} else if !errors.Is(err, ErrUnknownConversation) {
		return nil, false, err
	}
	now := time.Now().UTC()
	c := &Conversation{
		ID: id, State: StateBot, Created: now, Updated: now, Customer: customer,
		Bot: Leg{Channel: h.cfg.BotChannel, ConversationID: id, User: customer.User, Bot: h.cfg.Bot},
	}
	c, created, err := h.store.CreateConversation(ctx, c)
	if err != nil {
		return nil, false, fmt.Errorf("start conversation %s: %w", id, err)
	}
	if !created {
		return c, false, nil
	}
	h.log.Debug().Str("conv_id", id).Str("channel", customer.Channel).Msg("conversation started")
	if err := h.armInactivity(ctx, c, now); err != nil {
		h.log.Warn().Err(err).Str("conv_id", id).Msg("inactivity timer not set")
	}
	if customer.User.ID != "" {
		h.out.greetAtStart(c.ID, c.Bot.Key()) // the bot's outbox greets it (see outbox.greet)
	}
	return c, true, nil
}

// Receive takes an activity that arrived on leg from: it is appended to the conversation's log
// (which sets a.ID) addressed to the legs that the conversation's state and the sender's role
// call for, the conversation's state follows the handoff signal it carries, and the outbox
// delivers it. key is the idempotency key (the client's activity id, the channel's message id):
// a repeated key returns the first record's id and appends nothing.
//
// Receive waits, up to the delivery timeout, for the first delivery attempt of the activity to
// each leg it is addressed to, and returns the failures as *DeliveryError (the id is returned
// all the same: the activity is in the log, and retryable failures are retried). The Hub owns a
// after the call; channels must not change it.
func (h *Hub) Receive(ctx context.Context, from Leg, a *activity.Activity, key string) (string, error) {
	c, err := h.store.ConversationByLeg(ctx, from.Channel, from.ConversationID)
	if err != nil {
		return "", err
	}
	role, _ := c.LegOf(from)
	if c.State == StateEnded {
		return "", fmt.Errorf("conversation %s: %w", c.ID, ErrConversationEnded)
	}
	if a.Timestamp.IsZero() {
		a.Timestamp = activity.NewTime(time.Now())
	}
	if role != RoleCustomer && a.ReplyToID != "" && !h.inLog(ctx, c.ID, a.ReplyToID) {
		a.ReplyToID = "" // botframework.md §7.2: set replyToId only if it is real
	}
	sig, passThrough := h.signal(c, role, a)
	to := h.addressees(c, role, a, sig, passThrough)
	if sig.Kind == handoff.SignalEnd && a.Type == activity.TypeEndOfConversation {
		key = endKey // one end per conversation: a second one (a race) is the first
	}
	if h.cfg.Sealer != nil {
		if err := h.cfg.Sealer.Seal(c.ID, a); err != nil {
			return "", fmt.Errorf("seal for %s: %w", c.ID, err)
		}
	}
	seq, dup, err := h.store.Append(ctx, c.ID, Entry{From: role, Activity: a, Key: key, To: to, Trace: tracing.Carry(ctx)})
	if err != nil {
		return "", fmt.Errorf("append to %s: %w", c.ID, err)
	}
	if !dup {
		h.cfg.Metrics.Appended(from.Channel, string(role))
	}
	if e := h.log.Debug(); e != nil {
		e.Ctx(ctx).Str("conv_id", c.ID).Str("activity_id", a.ID).Int64("watermark", seq).Str("from", string(role)).
			Str("type", a.Type).Bool("dup", dup).Msg("received")
	}
	waits, inline := h.out.deliver(c.ID, seq, to, true)
	var errs []error
	switch {
	case dup:
	case sig.Kind == handoff.SignalEscalation:
		// The bot's request is recorded; its failure is handled (the bot is told), not the
		// bot's error: answering it with an error would only make it send again.
		if err := h.escalate(ctx, c.ID, sig); err != nil {
			h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("escalation not placed")
		}
	case sig.Kind == handoff.SignalEnd:
		if err := h.end(ctx, c.ID, role, h.endOf(sig, role), a); err != nil {
			errs = append(errs, err)
		}
	}
	if inline != nil {
		h.out.runInline(*inline, seq)
	}
	errs = append(errs, h.out.await(ctx, waits)...)
	return a.ID, errors.Join(errs...)
}

// endKey is the idempotency key of a conversation's endOfConversation.
const endKey = "\x00end"

// signal reads the handoff signal of an activity from role. Without a contact center a bot's
// escalation passes through to the customer's side, as Azure's Direct Line passes it (a hub
// there may act on it).
func (h *Hub) signal(c *Conversation, role Role, a *activity.Activity) (sig handoff.Signal, passThrough bool) {
	sig = signalOf(role, a)
	if sig.Kind == handoff.SignalEscalation {
		if _, err := h.escalator(c); errors.Is(err, ErrNoEscalator) {
			return handoff.Signal{Kind: handoff.SignalNone}, true
		}
	}
	return sig, false
}

func (h *Hub) endOf(sig handoff.Signal, role Role) handoff.End {
	end := *sig.End
	if end.Reason == "" {
		end.Reason = map[Role]string{RoleCustomer: handoff.EndCustomer, RoleAgent: handoff.EndAgent}[role]
	}
	return end
}

// addressees returns the keys of the legs the outbox delivers an activity from role to: the
// legs its state calls for, or every other leg for an endOfConversation; never a customer leg
// for a command meant for the bridge; never a leg whose channel reads the log itself.
func (h *Hub) addressees(c *Conversation, role Role, a *activity.Activity, sig handoff.Signal, passThrough bool) []string {
	legs := h.targets(c, role)
	if sig.Kind == handoff.SignalEnd && a.Type == activity.TypeEndOfConversation {
		legs = h.legsBut(c, role, c.State)
	}
	var to []string
	for _, l := range legs {
		if l.Key() == c.Customer.Key() && !passThrough && !CustomerVisible(a) {
			continue // a command for the bridge, not a message for the customer
		}
		if h.readsLog(l.Channel) {
			continue
		}
		to = append(to, l.Key())
	}
	return to
}

// readsLog reports whether the channel reads conversation logs itself (see LogReader).
func (h *Hub) readsLog(name string) bool {
	ch, err := h.channel(name)
	if err != nil {
		return false
	}
	r, ok := ch.(LogReader)
	return ok && r.ReadsLog()
}

// targets returns the legs an activity from role goes to in c's state.
func (h *Hub) targets(c *Conversation, role Role) []Leg {
	switch {
	case role == RoleCustomer && c.State == StateBot:
		return []Leg{c.Bot}
	case role == RoleCustomer && c.Agent != nil && (c.State == StateQueued || c.State == StateAgent || c.State == StateEscalating):
		return []Leg{*c.Agent}
	case role == RoleBot && c.State != StateHandedOff, role == RoleAgent:
		return []Leg{c.Customer}
	}
	return nil
}

// appendFor appends an activity of the bridge's own (an end, a reminder, a handoff.status)
// addressed to legs, and hands it to the outbox.
func (h *Hub) appendFor(ctx context.Context, c *Conversation, from Role, a *activity.Activity, key string, legs ...Leg) (seq int64, waits []wait, err error) {
	var to []string
	for _, l := range legs {
		if !h.readsLog(l.Channel) {
			to = append(to, l.Key())
		}
	}
	seq, dup, err := h.store.Append(ctx, c.ID, Entry{From: from, Activity: a, Key: key, To: to, Trace: tracing.Carry(ctx)})
	if err != nil {
		return 0, nil, fmt.Errorf("append to %s: %w", c.ID, err)
	}
	if !dup {
		h.cfg.Metrics.Appended(ownChannel, string(from))
	}
	waits, _ = h.out.deliver(c.ID, seq, to, false)
	return seq, waits, nil
}

// ownChannel is the channel label of what the bridge itself appends (ends, reminders,
// handoff.status).
const ownChannel = "bridge"

// inLog reports whether id names an activity already in the conversation's log.
func (h *Hub) inLog(ctx context.Context, convID, id string) bool {
	prefix := convID + "|"
	if !strings.HasPrefix(id, prefix) {
		return false
	}
	seq, err := strconv.ParseInt(id[len(prefix):], 10, 64)
	if err != nil || seq < 0 {
		return false
	}
	last, err := h.store.Last(ctx, convID)
	return err == nil && seq <= last
}
