package bridge

import (
	"context"
	"encoding/json"
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

// idleKey is where the set of watched conversations is kept in the store.
const idleKey = "bridge/inactivity"

// RoleSystem is the bridge itself, as the sender of what no party said (inactivity reminders
// and closes).
const RoleSystem Role = "system"

// idleWatch tracks the customer's silence per conversation. Only the set of watched
// conversations is stored (it changes when one starts or ends); each one's clock is the time of
// the last customer activity in its log, so a restart computes the same deadlines.
type idleWatch struct {
	h     *Hub
	mu    sync.Mutex
	convs map[string]*idle
	dirty bool
}

type idle struct {
	last     time.Time // the customer's last activity (or the start)
	reminded bool
	rules    *Inactivity // the conversation's own rules, when it has them (SetInactivity)
}

// touch restarts a conversation's clock: the customer spoke (or the conversation started).
func (w *idleWatch) touch(convID string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.convs[convID]
	if e == nil {
		e = &idle{}
		w.convs[convID] = e
		w.dirty = true
	}
	e.last, e.reminded = at, false
}

// forget stops watching a conversation.
func (w *idleWatch) forget(convID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.convs[convID]; ok {
		delete(w.convs, convID)
		w.dirty = true
	}
}

// SetInactivity sets the inactivity rules of one conversation, overriding the Hub's defaults
// (for a conversation whose contact center or bot asks for its own).
func (h *Hub) SetInactivity(ctx context.Context, convID string, in Inactivity) error {
	unlock := h.lockState(convID)
	defer unlock()
	c, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	c.Inactivity = &in
	if err := h.store.PutConversation(ctx, c); err != nil {
		return err
	}
	h.idle.mu.Lock()
	if e := h.idle.convs[convID]; e != nil {
		e.rules = &in
	}
	h.idle.mu.Unlock()
	return nil
}

// Run watches conversations for inactivity until ctx ends: it restores the watch kept in the
// store (a restart), then checks the deadlines every tick. Run it once per Hub.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.idle.restore(ctx); err != nil {
		h.log.Warn().Err(err).Msg("inactivity watch not restored")
	}
	tick := h.cfg.InactivityTick
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.idle.save(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			h.idle.check(ctx)
			h.idle.save(ctx)
		}
	}
}

// restore reads the watched set back and each clock from the conversation's log.
func (w *idleWatch) restore(ctx context.Context) error {
	raw, err := w.h.store.Value(ctx, idleKey)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return err
	}
	for _, id := range ids {
		c, err := w.h.store.Conversation(ctx, id)
		if err != nil || c.State == StateEnded {
			continue
		}
		e := &idle{last: c.Created, rules: c.Inactivity}
		last, err := w.h.store.Last(ctx, id)
		if err != nil {
			continue
		}
		recs, err := w.h.store.Since(ctx, id, max(last-100, -1), 0)
		if err != nil {
			continue
		}
		for _, r := range recs { // the last customer activity, and whether a reminder followed it
			switch {
			case r.From == RoleCustomer:
				e.last, e.reminded = r.At, false
			case r.From == RoleSystem && r.Activity.Type == activity.TypeMessage:
				e.reminded = true
			}
		}
		w.mu.Lock()
		w.convs[id] = e
		w.mu.Unlock()
	}
	return nil
}

// save stores the watched set when it changed.
func (w *idleWatch) save(ctx context.Context) {
	w.mu.Lock()
	if !w.dirty {
		w.mu.Unlock()
		return
	}
	ids := make([]string, 0, len(w.convs))
	for id := range w.convs {
		ids = append(ids, id)
	}
	w.dirty = false
	w.mu.Unlock()
	raw, _ := json.Marshal(ids)
	if err := w.h.store.PutValue(ctx, idleKey, raw); err != nil {
		w.h.log.Warn().Err(err).Msg("inactivity watch not stored")
		w.mu.Lock()
		w.dirty = true
		w.mu.Unlock()
	}
}

// check reminds or closes the conversations whose customer has been quiet too long. The scan is
// in memory; only a conversation past one of its deadlines is read from the store.
func (w *idleWatch) check(ctx context.Context) {
	now := time.Now()
	type due struct {
		id    string
		rules Inactivity
		close bool
	}
	var todo []due
	w.mu.Lock()
	for id, e := range w.convs {
		rules := w.h.cfg.Inactivity
		if e.rules != nil {
			rules = *e.rules
		}
		quiet := now.Sub(e.last)
		switch {
		case rules.CloseAfter > 0 && quiet >= rules.CloseAfter:
			todo = append(todo, due{id, rules, true})
		case rules.RemindAfter > 0 && quiet >= rules.RemindAfter && !e.reminded:
			todo = append(todo, due{id, rules, false})
		}
	}
	w.mu.Unlock()
	for _, d := range todo {
		c, err := w.h.store.Conversation(ctx, d.id)
		if err != nil || c.State == StateEnded || c.State == StateHandedOff {
			w.forget(d.id)
			continue
		}
		if c.State == StateEscalating {
			continue // the contact center is being called; look again on the next tick
		}
		if d.close {
			w.close(ctx, c, d.rules)
		} else {
			w.remind(ctx, c, d.rules)
		}
	}
}

// remind sends the customer the reminder, from the bot or the contact center, whichever has
// the conversation.
func (w *idleWatch) remind(ctx context.Context, c *Conversation, rules Inactivity) {
	text := rules.Reminder
	if text == "" {
		text = DefaultReminder
	}
	if err := w.h.system(ctx, c, &activity.Activity{Type: activity.TypeMessage, Text: text}); err != nil {
		w.h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("inactivity reminder not sent")
		return
	}
	w.mu.Lock()
	if e := w.convs[c.ID]; e != nil {
		e.reminded = true
	}
	w.mu.Unlock()
}

// close ends the conversation for inactivity, as a bot's own endOfConversation (botTimedOut)
// would: every leg hears.
func (w *idleWatch) close(ctx context.Context, c *Conversation, rules Inactivity) {
	text := rules.CloseText
	if text == "" {
		text = DefaultCloseText
	}
	if err := w.h.system(ctx, c, &activity.Activity{Type: activity.TypeMessage, Text: text}); err != nil {
		w.h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("inactivity close message not sent")
	}
	if err := w.h.End(ctx, c.ID, RoleSystem, handoff.End{Reason: handoff.EndTimeout, Code: handoff.CodeBotTimedOut}); err != nil {
		w.h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("inactivity close failed")
		return
	}
	w.forget(c.ID)
}

// system appends a message of the bridge's own to the conversation and delivers it to the
// customer, in the name of whoever has the conversation.
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
	seq, _, err := h.store.Append(ctx, c.ID, RoleSystem, a, "")
	if err != nil {
		return err
	}
	return h.deliver(ctx, c, c.Customer, seq, a)
}
