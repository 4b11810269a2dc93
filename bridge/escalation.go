package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
)

// An Escalator is a channel that takes conversations for human agents: a contact center.
type Escalator interface {
	Channel
	// Escalate hands c to human agents with e (its transcript filled in). It returns the leg
	// that stands for the contact center's side of the conversation and the state the
	// conversation enters: StateQueued when the bridge goes on relaying to the contact center,
	// StateHandedOff when the contact center owns the conversation from then on (T1).
	//
	// When Escalate is called, c is stored in StateEscalating with c.Agent set to the leg
	// {Channel: the escalator's name, ConversationID: c.ID}: activities the escalator sends on
	// that leg (Hub.Receive) already reach the customer. The Hub holds the conversation's state
	// lock during the call: Escalate must not call Accept, Requeue, ReturnToBot or End itself,
	// but may arrange for them to happen after it returns.
	Escalate(ctx context.Context, c *Conversation, e *handoff.Escalation) (agent Leg, next State, err error)
}

// ErrNoEscalator: a bot asked for a human and no contact center is configured.
var ErrNoEscalator = errors.New("no contact center to escalate to")

// CustomerVisible reports whether an activity of the log is shown to the customer. Handoff
// commands are not: a handoff event, a message carrying an Omnichannel command (its text is the
// note for the agent only), a context event. Nor is a conversationUpdate.
func CustomerVisible(a *activity.Activity) bool {
	switch a.Type {
	case activity.TypeConversationUpdate:
		return false
	case activity.TypeEvent, activity.TypeMessage:
	default:
		return true
	}
	if a.Type == activity.TypeMessage && len(a.ChannelData) == 0 {
		return true // the common case: no channelData, no command
	}
	sig, err := handoff.Detect(a)
	if err != nil {
		return true
	}
	switch sig.Kind {
	case handoff.SignalEscalation, handoff.SignalStatus, handoff.SignalContext:
		return false
	case handoff.SignalEnd:
		return a.Type == activity.TypeEndOfConversation
	}
	return true
}

// signalOf reads the handoff signal an activity from role carries. Customers and agents can only
// end; bots can escalate or end.
func signalOf(role Role, a *activity.Activity) handoff.Signal {
	if role == RoleCustomer && a.Type != activity.TypeEndOfConversation {
		return handoff.Signal{Kind: handoff.SignalNone}
	}
	sig, err := handoff.Detect(a)
	if err != nil {
		return handoff.Signal{Kind: handoff.SignalNone}
	}
	if role != RoleBot && sig.Kind != handoff.SignalEnd {
		return handoff.Signal{Kind: handoff.SignalNone}
	}
	return sig
}

// escalator returns the contact center for c: the customer's own channel when it is an
// Escalator (Omnichannel, T1), else the configured escalation channel.
func (h *Hub) escalator(c *Conversation) (Escalator, error) {
	if ch, err := h.channel(c.Customer.Channel); err == nil {
		if e, ok := ch.(Escalator); ok {
			return e, nil
		}
	}
	if h.cfg.EscalationChannel == "" {
		return nil, ErrNoEscalator
	}
	ch, err := h.channel(h.cfg.EscalationChannel)
	if err != nil {
		return nil, err
	}
	e, ok := ch.(Escalator)
	if !ok {
		return nil, fmt.Errorf("channel %q cannot take escalations: %w", h.cfg.EscalationChannel, ErrNoEscalator)
	}
	return e, nil
}

// escalate moves c from the bot to human agents. The transition to escalating is stored before
// the contact center is called, and the outcome after, so that a crash in between is visible.
func (h *Hub) escalate(ctx context.Context, convID string, sig handoff.Signal) error {
	unlock := h.lockState(convID)
	defer unlock()
	c, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	if c.State != StateBot {
		h.log.Info().Str("conv_id", c.ID).Str("state", string(c.State)).Msg("escalation ignored: the conversation is no longer with the bot")
		return nil
	}
	esc := sig.Escalation
	if esc == nil {
		esc = &handoff.Escalation{}
	}
	if len(esc.Transcript.Activities) == 0 {
		if esc.Transcript.Activities, err = h.transcript(ctx, c.ID); err != nil {
			return err
		}
	}
	if c.Context == nil {
		c.Context = handoff.Variables{}
	}
	for k, v := range esc.Context {
		c.Context[k] = v
	}
	c.EscalationDialect = sig.Dialect
	e, err := h.escalator(c)
	if err == nil {
		// The contact center's leg is stored with the escalating state, before the contact
		// center is called, so that it can already speak on it (automated messages).
		c.Agent = &Leg{Channel: e.Name(), ConversationID: c.ID}
		if err := h.setState(ctx, c, StateEscalating); err != nil {
			return err
		}
		var agent Leg
		var next State
		agent, next, err = e.Escalate(ctx, c, esc)
		if err == nil {
			c.Agent = &agent
			h.log.Info().Str("conv_id", c.ID).Str("channel", agent.Channel).Str("state", string(next)).Msg("escalated")
			return h.setState(ctx, c, next)
		}
	}
	h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("escalation failed; the bot keeps the conversation")
	c.Agent = nil
	if serr := h.setState(ctx, c, StateBot); serr != nil {
		return errors.Join(err, serr)
	}
	h.tellBot(ctx, c, handoff.StateFailed, "no human agent could take the conversation")
	return fmt.Errorf("escalate %s: %w", c.ID, err)
}

// transcript returns what the customer has seen of the conversation so far.
func (h *Hub) transcript(ctx context.Context, convID string) ([]*activity.Activity, error) {
	var out []*activity.Activity
	after := int64(-1)
	for {
		recs, err := h.store.Since(ctx, convID, after, 500)
		if err != nil {
			return nil, fmt.Errorf("transcript of %s: %w", convID, err)
		}
		if len(recs) == 0 {
			return out, nil
		}
		for _, r := range recs {
			if CustomerVisible(r.Activity) {
				out = append(out, r.Activity)
			}
			after = r.Seq
		}
	}
}

// Accept records that a human agent took the conversation: it enters StateAgent and the bot,
// when it escalated with an event, is told (handoff.status accepted).
func (h *Hub) Accept(ctx context.Context, convID string, agent Leg) error {
	unlock := h.lockState(convID)
	defer unlock()
	c, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	switch c.State {
	case StateQueued, StateEscalating, StateAgent:
	default:
		return fmt.Errorf("accept %s in state %s: %w", convID, c.State, ErrWrongState)
	}
	c.Agent = &agent
	if err := h.setState(ctx, c, StateAgent); err != nil {
		return err
	}
	h.tellBot(ctx, c, handoff.StateAccepted, "")
	return nil
}

// Requeue puts a conversation an agent held back in the queue (a transfer to another queue, or
// an agent who left): it enters StateQueued with the same contact-center leg.
func (h *Hub) Requeue(ctx context.Context, convID string) error {
	unlock := h.lockState(convID)
	defer unlock()
	c, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	if c.State != StateAgent && c.State != StateQueued {
		return fmt.Errorf("requeue %s in state %s: %w", convID, c.State, ErrWrongState)
	}
	return h.setState(ctx, c, StateQueued)
}

// ReturnToBot hands the conversation back to its bot (an agent → bot transfer): the bot gets
// the customer's activities again and is told the handoff completed.
func (h *Hub) ReturnToBot(ctx context.Context, convID string) error {
	unlock := h.lockState(convID)
	defer unlock()
	c, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	if c.State == StateEnded || c.State == StateBot {
		return fmt.Errorf("return %s to the bot in state %s: %w", convID, c.State, ErrWrongState)
	}
	c.Agent = nil
	if err := h.setState(ctx, c, StateBot); err != nil {
		return err
	}
	h.tellBot(ctx, c, handoff.StateCompleted, "returned to the bot")
	return nil
}

// End ends the conversation on behalf of role (an agent's end, an inactivity timeout): every
// other leg is told with an endOfConversation that is also appended to the log.
func (h *Hub) End(ctx context.Context, convID string, by Role, end handoff.End) error {
	return h.end(ctx, convID, by, end, nil)
}

// end moves the conversation to StateEnded and tells the other legs. done is the activity that
// carried the end, already appended and relayed; without one, an endOfConversation from by is
// appended and delivered.
func (h *Hub) end(ctx context.Context, convID string, by Role, end handoff.End, done *activity.Activity) error {
	unlock := h.lockState(convID)
	defer unlock()
	c, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	if c.State == StateEnded {
		return nil
	}
	prev := c.State
	if err := h.setState(ctx, c, StateEnded); err != nil {
		return err
	}
	h.log.Info().Str("conv_id", c.ID).Str("by", string(by)).Str("reason", end.Reason).Msg("conversation ended")
	h.idle.forget(c.ID)
	defer h.dropLocks(c) // after the last deliveries below
	var errs []error
	eoc := done
	if eoc == nil || eoc.Type != activity.TypeEndOfConversation {
		eoc = &activity.Activity{Type: activity.TypeEndOfConversation, Code: endCode(end), Text: end.Text, Timestamp: activity.NewTime(time.Now())}
		switch by {
		case RoleBot:
			bot := c.Bot.Bot
			eoc.From = &bot
		case RoleAgent:
			if c.Agent != nil {
				agent := c.Agent.Bot
				eoc.From = &agent
			}
		case RoleCustomer:
			user := c.Customer.User
			eoc.From = &user
		case RoleSystem: // in the name of whoever had the conversation
			from := c.Bot.Bot
			if c.Agent != nil && prev != StateBot {
				from = c.Agent.Bot
			}
			eoc.From = &from
		}
		seq, _, err := h.store.Append(ctx, c.ID, by, eoc, "")
		if err != nil {
			return fmt.Errorf("end %s: %w", c.ID, err)
		}
		for _, to := range h.legsBut(c, by, prev) {
			if err := h.deliver(ctx, c, to, seq, eoc); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	// The endOfConversation itself was relayed by state; the legs it did not reach hear now.
	reached := map[string]bool{}
	for _, l := range h.targets(&Conversation{State: prev, Customer: c.Customer, Bot: c.Bot, Agent: c.Agent}, by) {
		reached[l.Key()] = true
	}
	last, _ := h.store.Last(ctx, c.ID)
	for _, to := range h.legsBut(c, by, prev) {
		if reached[to.Key()] {
			continue
		}
		if err := h.deliver(ctx, c, to, last, done); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// legsBut returns the legs of c other than the one of role by that should hear of an end: the
// bot leg only while it is part of the conversation or parked after an escalation of ours.
func (h *Hub) legsBut(c *Conversation, by Role, prev State) []Leg {
	var out []Leg
	if by != RoleCustomer {
		out = append(out, c.Customer)
	}
	if by != RoleBot && !c.Bot.IsZero() && prev != StateHandedOff {
		out = append(out, c.Bot)
	}
	if by != RoleAgent && c.Agent != nil && prev != StateHandedOff {
		out = append(out, *c.Agent)
	}
	return out
}

func endCode(e handoff.End) string {
	if e.Code != "" {
		return e.Code
	}
	switch e.Reason {
	case handoff.EndCompleted, handoff.EndAgent:
		return handoff.CodeCompletedSuccessfully
	case handoff.EndCustomer:
		return handoff.CodeUserCancelled
	case handoff.EndTimeout:
		return handoff.CodeBotTimedOut
	case handoff.EndFailure:
		return handoff.CodeChannelFailed
	}
	return handoff.CodeUnknown
}

// tellBot sends the bot a handoff.status, when it escalated with the Bot Framework or Copilot
// event (Omnichannel-style bots get no status, as from Omnichannel). It is not logged: it is
// for the bot only. It is sent in the background, after the bot's current turn: a bot usually
// escalates within a turn, whose delivery holds the bot leg until the bot answers. A failure is
// logged, not returned: the bot need not handle it.
func (h *Hub) tellBot(ctx context.Context, c *Conversation, state, msg string) {
	if c.EscalationDialect != handoff.DialectBotFramework && c.EscalationDialect != handoff.DialectCopilot {
		return
	}
	c = &Conversation{ID: c.ID, Customer: c.Customer, Bot: c.Bot}
	ctx = context.WithoutCancel(ctx)
	h.background.Add(1)
	go func() {
		defer h.background.Done()
		h.sendStatus(ctx, c, state, msg)
	}()
}

// sendStatus delivers a handoff.status to the bot leg, in order with the leg's other deliveries.
func (h *Hub) sendStatus(ctx context.Context, c *Conversation, state, msg string) {
	ch, err := h.channel(c.Bot.Channel)
	if err != nil {
		return
	}
	a, _, err := handoff.Emit(handoff.Signal{Kind: handoff.SignalStatus, Status: &handoff.Status{State: state, Message: msg}}, handoff.DialectBotFramework, handoff.EmitOptions{})
	if err != nil {
		h.log.Warn().Err(err).Str("conv_id", c.ID).Msg("cannot build handoff.status")
		return
	}
	user, bot := c.Customer.User, c.Bot.Bot
	a.From, a.Recipient = &user, &bot
	a.Conversation = &activity.ConversationAccount{ID: c.Bot.ConversationID}
	a.Timestamp = activity.NewTime(time.Now())
	unlock := h.lockLeg(c.ID, c.Bot)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DeliveryTimeout)
	defer cancel()
	if _, err := ch.Send(ctx, c.Bot, a); err != nil {
		h.log.Warn().Err(err).Str("conv_id", c.ID).Str("state", state).Msg("handoff.status not delivered")
	}
}

// ErrWrongState: the conversation is not in a state that allows the operation.
var ErrWrongState = errors.New("wrong conversation state")

// setState stores c in state next.
func (h *Hub) setState(ctx context.Context, c *Conversation, next State) error {
	c.State = next
	c.Updated = time.Now().UTC()
	if err := h.store.PutConversation(ctx, c); err != nil {
		return fmt.Errorf("conversation %s to %s: %w", c.ID, next, err)
	}
	return nil
}

// stateLeg names the lock of a conversation's state transitions among the delivery locks.
var stateLeg = Leg{Channel: "\x00state"}

// lockState serialises the state transitions of one conversation.
func (h *Hub) lockState(convID string) (unlock func()) {
	return h.lockLeg(convID, stateLeg)
}
