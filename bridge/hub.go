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
)

// HubConfig configures a Hub.
type HubConfig struct {
	// BotChannel is the name of the channel that reaches the bot. Default: "botframework".
	BotChannel string
	// Bot is the bot's account as the customer sees it. Default: {id: "bot", name: "Bot"}.
	Bot activity.ChannelAccount
	// DeliveryTimeout bounds one delivery to a leg. Default: 15s, Azure Bot Service's bot timeout.
	DeliveryTimeout time.Duration
	// EscalationChannel is the contact center (an Escalator) that takes conversations whose bot
	// asks for a human, unless the customer's own channel is one (Omnichannel, T1). Default: none.
	EscalationChannel string
	// Inactivity is the default inactivity rule of conversations (SetInactivity overrides it per
	// conversation). Default: none. It acts only while Run runs.
	Inactivity Inactivity
	// InactivityTick is how often inactivity deadlines are checked. Default: 1s.
	InactivityTick time.Duration
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
	if c.InactivityTick <= 0 {
		c.InactivityTick = time.Second
	}
}

// Hub relays activities between the legs of conversations by role. Every activity is appended
// to the conversation's log before it is relayed or acknowledged. A Hub is safe for concurrent use.
type Hub struct {
	cfg   HubConfig
	store Store
	log   zerolog.Logger

	mu       sync.RWMutex
	channels map[string]Channel

	legLocks sync.Map // conv id + "\x00" + leg key -> *sync.Mutex: one delivery at a time per leg, in order

	background sync.WaitGroup // deliveries made after the call that caused them (greetings, statuses)

	idle idleWatch
}

// Wait returns once the deliveries the Hub makes in the background (greetings at start,
// handoff statuses) are done, or ctx ends.
func (h *Hub) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { h.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewHub returns a Hub over store. Channels are added with Register.
func NewHub(store Store, cfg HubConfig, log zerolog.Logger) *Hub {
	cfg.defaults()
	h := &Hub{cfg: cfg, store: store, log: log, channels: map[string]Channel{}}
	h.idle = idleWatch{h: h, convs: map[string]*idle{}}
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

// Store returns the Hub's store, for channels that read conversation logs (Direct Line streams).
func (h *Hub) Store() Store { return h.store }

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

// Start opens the conversation id for a customer leg, with a bot leg on the configured bot
// channel, and reports whether it was created (false: it existed). When the customer's user id
// is known the bot is told at once that the members joined; otherwise with the first activity.
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
	if err := h.store.PutConversation(ctx, c); err != nil {
		return nil, false, fmt.Errorf("start conversation %s: %w", id, err)
	}
	h.log.Debug().Str("conv_id", id).Str("channel", customer.Channel).Msg("conversation started")
	h.idle.touch(id, now)
	if customer.User.ID != "" {
		// Greet in the background, under the bot leg's lock, so that the customer's first
		// activity reaches the bot after the conversationUpdates and start is not held up by a slow bot.
		h.background.Add(1)
		go func() {
			defer h.background.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.DeliveryTimeout)
			defer cancel()
			unlock := h.lockLeg(c.ID, c.Bot)
			defer unlock()
			if err := h.greetLocked(ctx, c.ID, customer.User); err != nil {
				h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("bot greeting failed")
			}
		}()
	}
	return c, true, nil
}

// Receive takes an activity that arrived on leg from: it is appended to the conversation's log
// (which sets a.ID) and relayed to the legs that the conversation's state and the sender's role
// call for. The id is returned even when a delivery fails; the error is then a *DeliveryError.
// The Hub owns a after the call; channels must not change it.
func (h *Hub) Receive(ctx context.Context, from Leg, a *activity.Activity) (string, error) {
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
	seq, _, err := h.store.Append(ctx, c.ID, role, a, "")
	if err != nil {
		return "", fmt.Errorf("append to %s: %w", c.ID, err)
	}
	if role == RoleCustomer {
		h.idle.touch(c.ID, time.Now())
	}
	// The fields are added per event, not with With(): most activities log nothing.
	event := func(e *zerolog.Event) *zerolog.Event {
		return e.Str("conv_id", c.ID).Str("activity_id", a.ID).Int64("watermark", seq)
	}
	if e := h.log.Debug(); e != nil {
		event(e).Str("from", string(role)).Str("type", a.Type).Msg("received")
	}

	sig := signalOf(role, a)
	passThrough := false
	if sig.Kind == handoff.SignalEscalation {
		if _, err := h.escalator(c); errors.Is(err, ErrNoEscalator) {
			// No contact center here: the bridge is a plain Direct Line service, and passes the
			// bot's request on to the customer's side as Azure's Direct Line does (a hub there
			// may act on it), instead of handling it.
			sig, passThrough = handoff.Signal{Kind: handoff.SignalNone}, true
		}
	}
	var errs []error
	for _, to := range h.targets(c, role) {
		if to.Key() == c.Customer.Key() && !passThrough && !CustomerVisible(a) {
			continue // a command for the bridge, not a message for the customer
		}
		if err := h.deliver(ctx, c, to, seq, a); err != nil {
			event(h.log.Warn()).Err(err).Str("channel", to.Channel).Msg("delivery failed")
			errs = append(errs, err)
		}
	}
	switch sig.Kind {
	case handoff.SignalEscalation:
		// The bot's request is recorded; its failure is handled (the bot is told), not the
		// bot's error: answering it with an error would only make it send again.
		if err := h.escalate(ctx, c.ID, sig); err != nil {
			event(h.log.Warn()).Err(err).Msg("escalation not placed")
		}
	case handoff.SignalEnd:
		end := *sig.End
		if end.Reason == "" {
			end.Reason = map[Role]string{RoleCustomer: handoff.EndCustomer, RoleAgent: handoff.EndAgent}[role]
		}
		if err := h.end(ctx, c.ID, role, end, a); err != nil {
			errs = append(errs, err)
		}
	}
	return a.ID, errors.Join(errs...)
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

// dropLocks forgets the delivery locks of an ended conversation's legs, so that they do not
// accumulate. A delivery still waiting on one keeps its own reference and finishes.
func (h *Hub) dropLocks(c *Conversation) {
	for _, l := range append(c.Legs(), stateLeg) {
		h.legLocks.Delete(c.ID + "\x00" + l.Key())
	}
}

func (h *Hub) lockLeg(convID string, to Leg) (unlock func()) {
	key := convID + "\x00" + to.Key()
	m, ok := h.legLocks.Load(key) // no new mutex when one exists: the common case allocates nothing
	if !ok {
		m, _ = h.legLocks.LoadOrStore(key, &sync.Mutex{})
	}
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// deliver sends the activity at seq to one leg, in order with the leg's other deliveries, and
// records the leg's cursor once it is delivered.
func (h *Hub) deliver(ctx context.Context, c *Conversation, to Leg, seq int64, a *activity.Activity) error {
	ch, err := h.channel(to.Channel)
	if err != nil {
		return &DeliveryError{Leg: to.Key(), Err: err}
	}
	unlock := h.lockLeg(c.ID, to)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DeliveryTimeout)
	defer cancel()
	if to.Key() == c.Bot.Key() && !c.BotGreeted && a.From != nil {
		err = h.greetLocked(ctx, c.ID, *a.From)
	}
	if err == nil {
		_, err = ch.Send(ctx, to, a)
	}
	if err != nil {
		var de *DeliveryError
		if !errors.As(err, &de) {
			de = &DeliveryError{Leg: to.Key(), Err: err, Timeout: errors.Is(err, context.DeadlineExceeded)}
		}
		return de
	}
	return h.store.Ack(ctx, c.ID, to.Key(), seq)
}

// greetLocked tells the bot, once per conversation, that it and then the user joined
// (conversationUpdate with membersAdded [bot], then [user]: the Emulator's and Direct Line's way).
// The caller holds the bot leg's lock.
func (h *Hub) greetLocked(ctx context.Context, convID string, user activity.ChannelAccount) error {
	c, err := h.store.Conversation(ctx, convID)
	if err != nil || c.BotGreeted {
		return err
	}
	ch, err := h.channel(c.Bot.Channel)
	if err != nil {
		return &DeliveryError{Leg: c.Bot.Key(), Err: err}
	}
	bot := c.Bot.Bot
	user = activity.ChannelAccount{ID: user.ID, Name: user.Name}
	for i, member := range []activity.ChannelAccount{bot, user} {
		cu := &activity.Activity{
			Type:         activity.TypeConversationUpdate,
			ID:           fmt.Sprintf("%s|cu%d", convID, i),
			Timestamp:    activity.NewTime(time.Now()),
			From:         &user,
			Recipient:    &bot,
			Conversation: &activity.ConversationAccount{ID: c.Bot.ConversationID},
			MembersAdded: []activity.ChannelAccount{member},
		}
		if _, err := ch.Send(ctx, c.Bot, cu); err != nil {
			return fmt.Errorf("greet bot: %w", err)
		}
	}
	c.BotGreeted = true
	c.Updated = time.Now().UTC()
	return h.store.PutConversation(ctx, c)
}

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
