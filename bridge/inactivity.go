package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
)

// Inactivity says what the bridge does when the customer goes quiet: a reminder after
// RemindAfter, the end of the conversation (endOfConversation, code botTimedOut; toward
// Omnichannel, EndConversation) after CloseAfter. Zero durations turn each off. It applies while
// the bot or the bridge's contact center has the conversation, not once a contact center owns
// it (T1, handedOff), which runs its own timeout rules.
type Inactivity struct {
	RemindAfter time.Duration `json:"remindAfter,omitempty"`
	Reminder    string        `json:"reminder,omitempty"`
	CloseAfter  time.Duration `json:"closeAfter,omitempty"`
	CloseText   string        `json:"closeText,omitempty"`
}

func (in Inactivity) active() bool { return in.RemindAfter > 0 || in.CloseAfter > 0 }

// Defaults of the texts.
const (
	DefaultReminder  = "Are you still there?"
	DefaultCloseText = "This conversation was closed after a period of inactivity."
)

// RoleSystem is the bridge itself, as the sender of what no party said (inactivity reminders
// and closes, handoff statuses).
const RoleSystem Role = "system"

// inactivityTimer is the name of a conversation's inactivity timer in the store.
const inactivityTimer = "inactivity"

// The inactivity clock of a conversation is the time of the customer's last activity in its log
// (or its start). Nothing is written when the customer speaks: the stored timer holds the next
// time to look, and when it comes due the Hub reads the log's tail, acts if a deadline has
// passed, and sets the timer to the next deadline. So a restart computes the same deadlines,
// and a bridge without inactivity rules writes no timers at all.

// rules returns the inactivity rules that apply to c.
func (h *Hub) rules(c *Conversation) Inactivity {
	if c.Inactivity != nil {
		return *c.Inactivity
	}
	return h.cfg.Inactivity
}

// armInactivity sets the first inactivity timer of a conversation whose rules are on.
func (h *Hub) armInactivity(ctx context.Context, c *Conversation, from time.Time) error {
	in := h.rules(c)
	if !in.active() {
		return nil
	}
	return h.store.SetTimer(ctx, c.ID, inactivityTimer, from.Add(in.firstDeadline()))
}

// firstDeadline is the earlier of the two durations that are set.
func (in Inactivity) firstDeadline() time.Duration {
	switch {
	case in.RemindAfter > 0 && in.CloseAfter > 0:
		return min(in.RemindAfter, in.CloseAfter)
	case in.RemindAfter > 0:
		return in.RemindAfter
	}
	return in.CloseAfter
}

// SetInactivity sets the inactivity rules of one conversation, overriding the Hub's defaults
// (for a conversation whose contact center or bot asks for its own).
func (h *Hub) SetInactivity(ctx context.Context, convID string, in Inactivity) error {
	c, err := UpdateConversation(ctx, h.store, convID, func(c *Conversation) error {
		c.Inactivity = &in
		return nil
	})
	if err != nil {
		return err
	}
	if !in.active() {
		return h.store.SetTimer(ctx, convID, inactivityTimer, time.Time{})
	}
	return h.armInactivity(ctx, c, time.Now())
}

// Run resumes the deliveries an earlier run left pending, then acts on the store's due timers
// every tick until ctx ends. With a store shared by several processes (a Leaser), it also
// looks for pending deliveries every PendingScan (a dead process's, whose leases ran out), and
// acts on a due timer only once it has claimed it (Leaser.ClaimTimer). Run it once per Hub.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.out.resume(ctx); err != nil {
		h.log.Warn().Err(err).Msg("pending deliveries not resumed")
	}
	t := time.NewTicker(h.cfg.InactivityTick)
	defer t.Stop()
	var scan <-chan time.Time
	if h.leaser != nil {
		st := time.NewTicker(h.cfg.PendingScan)
		defer st.Stop()
		scan = st.C
	}
	var running sync.Map // conversation id -> struct{}: a timer being handled
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-scan:
			if err := h.out.resume(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn().Err(err).Msg("pending deliveries not scanned")
			}
			continue
		case <-t.C:
		}
		due, err := h.store.DueTimers(ctx, time.Now(), 256)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn().Err(err).Msg("due timers not read")
			}
			continue
		}
		for _, tm := range due {
			if _, busy := running.LoadOrStore(tm.ConversationID, struct{}{}); busy {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer running.Delete(tm.ConversationID)
				h.claimedTimer(ctx, tm)
			}()
		}
	}
}

// claimedTimer acts on a due timer, once this process has claimed it when the store is shared.
func (h *Hub) claimedTimer(ctx context.Context, tm Timer) {
	if h.leaser == nil {
		h.onTimer(ctx, tm)
		return
	}
	tok, ok, err := h.leaser.ClaimTimer(ctx, tm, h.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn().Err(err).Str("conv_id", tm.ConversationID).Str("timer", tm.Name).Msg("timer not claimed")
		}
		return
	}
	if !ok {
		return // another process has it, or has handled it
	}
	hctx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go h.keepLease(hctx, tm.ConversationID, TimerLease(tm.Name), tok, stop, kept)
	h.onTimer(hctx, tm) // a lost lease ends the handler's waits; its writes are compare-and-swaps
	stop()
	<-kept
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := h.leaser.Release(rctx, tm.ConversationID, TimerLease(tm.Name), tok); err != nil {
		h.log.Warn().Err(err).Str("conv_id", tm.ConversationID).Str("timer", tm.Name).Msg("timer lease not released; it runs out")
	}
}

// onTimer acts on one due timer.
func (h *Hub) onTimer(ctx context.Context, tm Timer) {
	switch tm.Name {
	case inactivityTimer:
	case escalationTimer:
		h.escalationStalled(ctx, tm.ConversationID)
		h.clearEscalationTimer(ctx, tm.ConversationID)
		return
	default:
		h.log.Warn().Str("conv_id", tm.ConversationID).Str("timer", tm.Name).Msg("unknown timer removed")
		_ = h.store.SetTimer(ctx, tm.ConversationID, tm.Name, time.Time{})
		return
	}
	next, err := h.checkInactivity(ctx, tm.ConversationID)
	if err != nil {
		h.log.Warn().Err(err).Str("conv_id", tm.ConversationID).Msg("inactivity check failed")
		next = time.Now().Add(h.cfg.InactivityTick * 10)
	}
	if err := h.store.SetTimer(ctx, tm.ConversationID, inactivityTimer, next); err != nil && ctx.Err() == nil {
		h.log.Warn().Err(err).Str("conv_id", tm.ConversationID).Msg("inactivity timer not set")
	}
}

// checkInactivity reminds or closes a conversation whose customer has been quiet too long, and
// returns when to look again (zero: never).
func (h *Hub) checkInactivity(ctx context.Context, convID string) (time.Time, error) {
	c, err := h.store.Conversation(ctx, convID)
	if errors.Is(err, ErrUnknownConversation) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	in := h.rules(c)
	switch {
	case c.State == StateEnded || c.State == StateHandedOff || !in.active():
		return time.Time{}, nil
	case c.State == StateEscalating:
		return time.Now().Add(h.cfg.InactivityTick), nil // the contact center is being called
	}
	last, reminded, err := h.quietSince(ctx, c)
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	quiet := now.Sub(last)
	switch {
	case in.CloseAfter > 0 && quiet >= in.CloseAfter:
		h.closeIdle(ctx, c, in)
		return time.Time{}, nil
	case in.RemindAfter > 0 && quiet >= in.RemindAfter && !reminded:
		if err := h.remind(ctx, c, in); err != nil {
			return time.Time{}, err
		}
		reminded = true
	}
	return nextLook(in, last, reminded, now), nil
}

// nextLook is when the next inactivity deadline of a conversation quiet since last falls; when
// none is left (reminded, and no close), a look after RemindAfter finds out whether the customer
// spoke since.
func nextLook(in Inactivity, last time.Time, reminded bool, now time.Time) time.Time {
	var next time.Time
	if in.RemindAfter > 0 && !reminded {
		next = last.Add(in.RemindAfter)
	}
	if in.CloseAfter > 0 && (next.IsZero() || last.Add(in.CloseAfter).Before(next)) {
		next = last.Add(in.CloseAfter)
	}
	if next.IsZero() || !next.After(now) {
		next = now.Add(max(in.RemindAfter, in.CloseAfter))
	}
	return next
}

// quietTail is how far back in a log the customer's last activity is looked for.
const quietTail = 500

// quietSince returns the time of the customer's last activity (the start, when none is in the
// log's tail) and whether a reminder followed it.
func (h *Hub) quietSince(ctx context.Context, c *Conversation) (time.Time, bool, error) {
	last, err := h.store.Last(ctx, c.ID)
	if err != nil {
		return time.Time{}, false, err
	}
	recs, err := h.store.Since(ctx, c.ID, max(last-quietTail, -1), 0)
	if err != nil {
		return time.Time{}, false, err
	}
	at, reminded := c.Created, false
	for _, r := range recs {
		switch {
		case r.From == RoleCustomer:
			at, reminded = r.At, false
		case r.From == RoleSystem && r.Activity.Type == activity.TypeMessage:
			reminded = true
		}
	}
	return at, reminded, nil
}

// remind sends the customer the reminder, from the bot or the contact center, whichever has
// the conversation.
func (h *Hub) remind(ctx context.Context, c *Conversation, rules Inactivity) error {
	text := rules.Reminder
	if text == "" {
		text = DefaultReminder
	}
	return h.system(ctx, c, &activity.Activity{Type: activity.TypeMessage, Text: text})
}

// closeIdle ends the conversation for inactivity, as a bot's own endOfConversation (botTimedOut)
// would: every leg hears.
func (h *Hub) closeIdle(ctx context.Context, c *Conversation, rules Inactivity) {
	text := rules.CloseText
	if text == "" {
		text = DefaultCloseText
	}
	if err := h.system(ctx, c, &activity.Activity{Type: activity.TypeMessage, Text: text}); err != nil {
		h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("inactivity close message not sent")
	}
	if err := h.End(ctx, c.ID, RoleSystem, handoff.End{Reason: handoff.EndTimeout, Code: handoff.CodeBotTimedOut}); err != nil {
		h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("inactivity close failed")
	}
}

// system appends a message of the bridge's own to the conversation for the customer, in the
// name of whoever has the conversation, and waits for its first delivery attempt.
func (h *Hub) system(ctx context.Context, c *Conversation, a *activity.Activity) error {
	from := c.Bot.Bot
	if c.Agent != nil && c.State != StateBot {
		from = c.Agent.Bot
	}
	a.From = &from
	a.Timestamp = activity.NewTime(time.Now())
	if err := a.SetChannelDataField("bfbridgeRole", "system"); err != nil {
		return err
	}
	_, waits, err := h.appendFor(ctx, c, RoleSystem, a, "", c.Customer)
	if err != nil {
		return err
	}
	return errors.Join(h.out.await(ctx, waits)...)
}
