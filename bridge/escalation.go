package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/internal/metrics"
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

// TokensResponseEvent is the name of the event that hands the bot a user's token: never shown
// to the customer's client nor to an agent.
const TokensResponseEvent = "tokens/response"

// CustomerVisible reports whether an activity of the log is shown to the customer. Handoff
// commands are not: a handoff event, a message carrying an Omnichannel command (its text is the
// note for the agent only), a context event, a tokens/response event. Nor is a
// conversationUpdate, a bot's answer to an invoke (an HTTP answer, given to the caller that
// posted the invoke: invoke.go), or a sign-in invoke (signin/tokenExchange carries the
// customer's token, signin/verifyState a magic code: signin.md §2c), which no transcript shows.
func CustomerVisible(a *activity.Activity) bool {
	switch a.Type {
	case activity.TypeConversationUpdate, activity.TypeInvokeResponse:
		return false
	case activity.TypeInvoke:
		return !strings.HasPrefix(a.Name, "signin/")
	case activity.TypeEvent, activity.TypeMessage:
	default:
		return true
	}
	if a.Type == activity.TypeEvent && a.Name == TokensResponseEvent {
		return false // a user's token, for the bot only (reference/signin.md §2b)
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
// the contact center is called (only one of two concurrent escalations makes it), and the
// outcome after; no lock is held while the contact center works, so an end that arrives
// meanwhile goes through, and the contact center is then told of it.
func (h *Hub) escalate(ctx context.Context, convID string, sig handoff.Signal) error {
	esc := sig.Escalation
	if esc == nil {
		esc = &handoff.Escalation{}
	}
	if len(esc.Transcript.Activities) == 0 {
		var err error
		if esc.Transcript.Activities, err = h.transcript(ctx, convID); err != nil {
			return err
		}
	}
	var e Escalator
	c, err := UpdateConversation(ctx, h.store, convID, func(c *Conversation) error {
		if c.State != StateBot {
			return errNotWithBot
		}
		if c.Context == nil {
			c.Context = handoff.Variables{}
		}
		for k, v := range esc.Context {
			c.Context[k] = v
		}
		c.EscalationDialect = sig.Dialect
		var err error
		if e, err = h.escalator(c); err != nil {
			return err
		}
		// The contact center's leg is stored with the escalating state, before the contact
		// center is called, so that it can already speak on it (automated messages).
		c.Agent = &Leg{Channel: e.Name(), ConversationID: c.ID}
		c.State = StateEscalating
		return nil
	})
	switch {
	case errors.Is(err, errNotWithBot):
		h.log.Info().Str("conv_id", convID).Str("state", string(c.State)).Msg("escalation ignored: the conversation is no longer with the bot")
		return nil
	case err != nil && c == nil:
		return err
	case err != nil:
		return h.escalationFailed(ctx, convID, err)
	}
	// Should the bridge stop while the contact center works, the timer gives the conversation
	// back to the bot after a restart (see onTimer).
	if err := h.store.SetTimer(ctx, convID, escalationTimer, time.Now().Add(h.escalationGrace())); err != nil {
		h.log.Warn().Err(err).Str("conv_id", convID).Msg("escalation timer not set")
	}
	agent, next, err := e.Escalate(ctx, c, esc)
	if err != nil {
		return h.escalationFailed(ctx, convID, err)
	}
	return h.escalated(ctx, convID, agent, next)
}

var errNotWithBot = errors.New("not with the bot")

// escalationTimer is the name of the timer that watches an escalation in progress.
const escalationTimer = "escalation"

// escalationGrace is how long an escalation may stay in progress before a Hub that finds it
// (after a restart) gives the conversation back to the bot.
func (h *Hub) escalationGrace() time.Duration { return 4 * h.cfg.DeliveryTimeout }

// clearEscalationTimer removes the timer once the escalation's outcome is stored.
func (h *Hub) clearEscalationTimer(ctx context.Context, convID string) {
	if err := h.store.SetTimer(ctx, convID, escalationTimer, time.Time{}); err != nil {
		h.log.Warn().Err(err).Str("conv_id", convID).Msg("escalation timer not removed")
	}
}

// escalationStalled gives back to the bot a conversation whose escalation was left in progress.
func (h *Hub) escalationStalled(ctx context.Context, convID string) {
	c, err := h.store.Conversation(ctx, convID)
	if err != nil || c.State != StateEscalating {
		return
	}
	_ = h.escalationFailed(ctx, convID, errors.New("the bridge stopped while the contact center was being called"))
}

// escalated stores the contact center's answer. When the conversation ended while the contact
// center worked, the contact center is told of the end.
func (h *Hub) escalated(ctx context.Context, convID string, agent Leg, next State) error {
	c, err := UpdateConversation(ctx, h.store, convID, func(c *Conversation) error {
		if c.State != StateEscalating {
			return ErrNoChange
		}
		c.Agent, c.State = &agent, next
		return nil
	})
	if err != nil {
		return err
	}
	h.clearEscalationTimer(ctx, convID)
	if c.State == StateEnded && next != StateHandedOff {
		eoc := &activity.Activity{Type: activity.TypeEndOfConversation, Code: handoff.CodeUserCancelled, Timestamp: activity.NewTime(time.Now())}
		user := c.Customer.User
		eoc.From = &user
		_, _, err := h.appendFor(ctx, c, RoleSystem, eoc, "\x00end-after-escalation", agent)
		return err
	}
	h.cfg.Metrics.Escalation(agent.Channel, metrics.EscalationPlaced)
	h.log.Info().Str("conv_id", convID).Str("channel", agent.Channel).Str("state", string(c.State)).Msg("escalated")
	return nil
}

// escalationFailed gives the conversation back to the bot and tells it.
func (h *Hub) escalationFailed(ctx context.Context, convID string, cause error) error {
	h.log.Warn().Err(cause).Str("conv_id", convID).Msg("escalation failed; the bot keeps the conversation")
	target := h.cfg.EscalationChannel
	c, err := UpdateConversation(ctx, h.store, convID, func(c *Conversation) error {
		if c.State != StateEscalating && c.State != StateBot {
			return ErrNoChange
		}
		if c.Agent != nil {
			target = c.Agent.Channel
		}
		c.Agent, c.State = nil, StateBot
		return nil
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	h.cfg.Metrics.Escalation(target, metrics.EscalationFailed)
	h.clearEscalationTimer(ctx, convID)
	if c.State == StateBot {
		h.tellBot(ctx, c, handoff.StateFailed, "no human agent could take the conversation")
	}
	return fmt.Errorf("escalate %s: %w", convID, cause)
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
	c, err := h.transition(ctx, convID, "accept", func(c *Conversation) error {
		switch c.State {
		case StateQueued, StateEscalating, StateAgent:
		default:
			return ErrWrongState
		}
		c.Agent, c.State = &agent, StateAgent
		return nil
	})
	if err == nil {
		h.cfg.Metrics.Escalation(agent.Channel, metrics.EscalationAccepted)
		h.tellBot(ctx, c, handoff.StateAccepted, "")
	}
	return err
}

// Requeue puts a conversation an agent held back in the queue (a transfer to another queue, or
// an agent who left): it enters StateQueued with the same contact-center leg.
func (h *Hub) Requeue(ctx context.Context, convID string) error {
	_, err := h.transition(ctx, convID, "requeue", func(c *Conversation) error {
		if c.State != StateAgent && c.State != StateQueued {
			return ErrWrongState
		}
		c.State = StateQueued
		return nil
	})
	return err
}

// ReturnToBot hands the conversation back to its bot: the bot gets the customer's activities
// again and is told how the handoff went — completed after an agent had it (an agent → bot
// transfer), failed when no agent ever took it (the contact center could not route it).
func (h *Hub) ReturnToBot(ctx context.Context, convID string) error {
	var prev State
	c, err := h.transition(ctx, convID, "return to the bot", func(c *Conversation) error {
		if c.State == StateEnded || c.State == StateBot {
			return ErrWrongState
		}
		prev, c.Agent, c.State = c.State, nil, StateBot
		return nil
	})
	switch {
	case err != nil:
	case prev == StateQueued || prev == StateEscalating:
		h.tellBot(ctx, c, handoff.StateFailed, "no human agent could take the conversation")
	default:
		h.tellBot(ctx, c, handoff.StateCompleted, "returned to the bot")
	}
	return err
}

// transition applies a state change atomically; ErrWrongState from fn is reported with the
// state the conversation was in.
func (h *Hub) transition(ctx context.Context, convID, what string, fn func(*Conversation) error) (*Conversation, error) {
	c, err := UpdateConversation(ctx, h.store, convID, fn)
	if errors.Is(err, ErrWrongState) && c != nil {
		return nil, fmt.Errorf("%s %s in state %s: %w", what, convID, c.State, ErrWrongState)
	}
	return c, err
}

// End ends the conversation on behalf of role (an agent's end, an inactivity timeout): every
// other leg is told with an endOfConversation that is appended to the log. It returns once the
// end is stored; the outbox delivers it (Wait waits for that). It does not wait for the
// deliveries, since one of them may be queued behind the very turn of a bot that is ending.
func (h *Hub) End(ctx context.Context, convID string, by Role, end handoff.End) error {
	return h.end(ctx, convID, by, end, nil)
}

// end moves the conversation to StateEnded and makes sure the other legs hear. done is the
// activity that carried the end, already appended: an endOfConversation is addressed to every
// other leg already; for anything else (an Omnichannel EndConversation command) an
// endOfConversation from by is appended for them. A conversation has one endOfConversation
// record (its idempotency key): of two concurrent ends, the first one's is delivered.
func (h *Hub) end(ctx context.Context, convID string, by Role, end handoff.End, done *activity.Activity) error {
	var prev State
	c, err := UpdateConversation(ctx, h.store, convID, func(c *Conversation) error {
		if c.State == StateEnded {
			return ErrNoChange
		}
		prev, c.State = c.State, StateEnded
		return nil
	})
	if err != nil || prev == "" {
		return err // already ended: whoever ended it told the legs
	}
	h.log.Info().Str("conv_id", c.ID).Str("by", string(by)).Str("reason", end.Reason).Msg("conversation ended")
	if c.Agent != nil && prev != StateBot {
		h.cfg.Metrics.Escalation(c.Agent.Channel, metrics.EscalationEnded)
	}
	if done != nil && done.Type == activity.TypeEndOfConversation {
		return nil
	}
	eoc := &activity.Activity{Type: activity.TypeEndOfConversation, Code: endCode(end), Text: end.Text, Timestamp: activity.NewTime(time.Now())}
	from := h.ender(c, by, prev)
	eoc.From = &from
	if _, _, err := h.appendFor(ctx, c, by, eoc, endKey, h.legsBut(c, by, prev)...); err != nil {
		return fmt.Errorf("end %s: %w", c.ID, err)
	}
	return nil
}

// ender is the account an endOfConversation of role by comes from.
func (h *Hub) ender(c *Conversation, by Role, prev State) activity.ChannelAccount {
	switch by {
	case RoleAgent:
		if c.Agent != nil {
			return c.Agent.Bot
		}
	case RoleCustomer:
		return c.Customer.User
	case RoleSystem: // in the name of whoever had the conversation
		if c.Agent != nil && prev != StateBot {
			return c.Agent.Bot
		}
	}
	return c.Bot.Bot
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
// event (Omnichannel-style bots get no status, as from Omnichannel). It is appended to the log,
// addressed to the bot only, and delivered after the bot's current turn (a bot usually
// escalates within a turn): it is not waited for. A failure is logged, not returned: the bot
// need not handle it.
func (h *Hub) tellBot(ctx context.Context, c *Conversation, state, msg string) {
	if c.EscalationDialect != handoff.DialectBotFramework && c.EscalationDialect != handoff.DialectCopilot {
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
	key := fmt.Sprintf("\x00status/%d", c.Version) // one status per transition
	if _, _, err := h.appendFor(ctx, c, RoleSystem, a, key, c.Bot); err != nil {
		h.log.Warn().Err(err).Str("conv_id", c.ID).Str("state", state).Msg("handoff.status not recorded")
	}
}

// ErrWrongState: the conversation is not in a state that allows the operation.
var ErrWrongState = errors.New("wrong conversation state")
