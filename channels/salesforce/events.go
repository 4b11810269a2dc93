package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// Event types the channel acts on (escalation.md §5); any other is ignored, as Salesforce
// requires of custom clients.
const (
	evMessage       = "CONVERSATION_MESSAGE"
	evParticipant   = "CONVERSATION_PARTICIPANT_CHANGED"
	evRouting       = "CONVERSATION_ROUTING_RESULT"
	evTypingStarted = "CONVERSATION_TYPING_STARTED_INDICATOR"
	evSessionStatus = "CONVERSATION_SESSION_STATUS_CHANGED"
	evClose         = "CONVERSATION_CLOSE_CONVERSATION"
)

// handle acts on one event of the session's conversation.
func (ch *Channel) handle(ctx context.Context, s *session, typ string, env *envelope) error {
	var err error
	switch typ {
	case evMessage:
		err = ch.onMessage(ctx, s, env)
	case evParticipant:
		err = ch.onParticipants(ctx, s, env)
	case evRouting:
		err = ch.onRouting(ctx, s, env)
	case evTypingStarted:
		if fromRep(env.Entry.Sender.Role) {
			err = ch.say(ctx, s, env, &activity.Activity{Type: activity.TypeTyping}, "")
		}
	case evSessionStatus:
		err = ch.onSessionStatus(ctx, s, env)
	case evClose:
		err = ch.ended(ctx, s, "The conversation was closed.")
	}
	if errors.Is(err, bridge.ErrConversationEnded) || errors.Is(err, bridge.ErrUnknownConversation) {
		// The bridge's conversation is over (or gone): nothing more to relay.
		return ch.closed(ctx, s)
	}
	return err
}

// fromRep reports whether a sender role speaks to the customer for the contact center: Agent,
// Chatbot, System — not the customer's own echo (EndUser), the Router, or a Supervisor.
func fromRep(role string) bool {
	switch strings.ToLower(role) {
	case "agent", "chatbot", "system":
		return true
	}
	return false
}

// onMessage relays a rep's message (text, attachments as links) to the customer.
func (ch *Channel) onMessage(ctx context.Context, s *session, env *envelope) error {
	if !fromRep(env.Entry.Sender.Role) {
		return nil
	}
	var p messagePayload
	if err := json.Unmarshal(env.Entry.Payload, &p); err != nil {
		ch.log.Debug().Err(err).Str("conv_id", s.convID).Msg("message ignored: payload not understood")
		return nil
	}
	sc := p.AbstractMessage.StaticContent
	a := &activity.Activity{Type: activity.TypeMessage, Text: sc.Text}
	for _, at := range sc.Attachments {
		if at.URL != "" {
			a.Attachments = append(a.Attachments, activity.Attachment{ContentType: at.MimeType, ContentURL: at.URL, Name: at.Name})
		}
	}
	if a.Text == "" && len(a.Attachments) == 0 {
		return nil // a format the bridge does not render (choices, …)
	}
	return ch.say(ctx, s, env, a, "")
}

// onParticipants: an agent who joins takes the conversation (Hub.Accept) and the customer is
// told; an agent who leaves is announced.
func (ch *Channel) onParticipants(ctx context.Context, s *session, env *envelope) error {
	var p participantPayload
	if err := json.Unmarshal(env.Entry.Payload, &p); err != nil {
		return nil
	}
	for _, e := range p.Entries {
		if !strings.EqualFold(e.Participant.Role, "agent") {
			continue
		}
		who := account(e.Participant, e.DisplayName)
		var err error
		switch strings.ToLower(e.Operation) {
		case "add":
			err = ch.accept(ctx, s, env, who)
		case "remove":
			err = ch.say(ctx, s, env, notice(who.Name+" has left"), "/left/"+e.Participant.Subject)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// accept records the agent on the conversation (once) and tells the customer.
func (ch *Channel) accept(ctx context.Context, s *session, env *envelope, who activity.ChannelAccount) error {
	c, err := ch.hub.Conversation(ctx, s.convID)
	if err != nil {
		return err
	}
	if c.State == bridge.StateEnded {
		return bridge.ErrConversationEnded
	}
	if c.State != bridge.StateAgent || c.Agent == nil || c.Agent.Bot.ID != who.ID {
		if err := ch.hub.Accept(ctx, s.convID, ch.leg(s.convID, who)); err != nil && !errors.Is(err, bridge.ErrWrongState) {
			return err
		}
	}
	return ch.say(ctx, s, env, notice(who.Name+" has joined"), "/joined/"+who.ID)
}

// onRouting: a failed routing gives the conversation back to the bot, the customer told. The
// session is closed first, so that an escalation right after opens a new MIAW conversation.
func (ch *Channel) onRouting(ctx context.Context, s *session, env *envelope) error {
	var p routingPayload
	if err := json.Unmarshal(env.Entry.Payload, &p); err != nil || !p.failed() {
		return nil
	}
	ch.log.Info().Str("conv_id", s.convID).Str("failure", p.FailureType).Msg("salesforce routing failed; back to the bot")
	if err := ch.say(ctx, s, env, notice("No agent could take the conversation. You are back with the bot."), "/routing"); err != nil {
		return err
	}
	if err := s.update(ctx, func(st *sessionState) { st.Closed = true }); err != nil {
		return err
	}
	defer ch.streams.stop(s.convID)
	if err := ch.deleteConversation(ctx, s); err != nil {
		ch.log.Warn().Err(err).Str("conv_id", s.convID).Msg("unrouted salesforce conversation not closed")
	}
	if err := ch.hub.ReturnToBot(ctx, s.convID); err != nil && !errors.Is(err, bridge.ErrWrongState) {
		ch.log.Warn().Err(err).Str("conv_id", s.convID).Msg("unrouted conversation not given back to the bot")
	}
	return nil
}

// onSessionStatus ends the conversation when the session ended: the payload's sessionStatus
// when it says so, else the conversation's routingStatus (NEEDS_ROUTING: the agent ended).
func (ch *Channel) onSessionStatus(ctx context.Context, s *session, env *envelope) error {
	var p statusPayload
	_ = json.Unmarshal(env.Entry.Payload, &p)
	switch strings.ToLower(p.SessionStatus) {
	case "ended", "closed", "inactive":
		return ch.ended(ctx, s, "The agent ended the conversation.")
	case "":
	default:
		return nil
	}
	status, err := ch.routingStatus(ctx, s)
	if err != nil {
		return err
	}
	if status == "NEEDS_ROUTING" || status == "CLOSED" {
		return ch.ended(ctx, s, "The agent ended the conversation.")
	}
	return nil
}

// routingStatus reads GET /conversation/{id}'s routingStatus.
func (ch *Channel) routingStatus(ctx context.Context, s *session) (string, error) {
	raw, err := ch.call(ctx, s, request{op: "read conversation", method: http.MethodGet, url: ch.conversationURL(s, "")})
	if err != nil {
		return "", err
	}
	var c struct {
		RoutingStatus string `json:"routingStatus"`
	}
	_ = json.Unmarshal(raw, &c)
	return strings.ToUpper(c.RoutingStatus), nil
}

// ended ends the conversation on every leg, in the agent's name, then closes the session (an
// end that fails is retried with the event: it comes again after the reconnection).
func (ch *Channel) ended(ctx context.Context, s *session, text string) error {
	if err := ch.hub.End(ctx, s.convID, bridge.RoleAgent, endOf(text)); err != nil {
		return err
	}
	return ch.closed(ctx, s)
}

func endOf(text string) handoff.End {
	return handoff.End{Reason: handoff.EndAgent, Text: text}
}

// say hands an activity from the contact center to the Hub, under the entry's identifier
// (with suffix) as idempotency key: a replayed event makes no second activity.
func (ch *Channel) say(ctx context.Context, s *session, env *envelope, a *activity.Activity, suffix string) error {
	from := account(env.Entry.Sender, env.Entry.SenderDisplayName)
	if a.From != nil {
		from = *a.From
	}
	a.From = &from
	key := ""
	if env.Entry.Identifier != "" {
		key = "salesforce:" + env.Entry.Identifier + suffix
	}
	_, err := ch.hub.Receive(ctx, ch.leg(s.convID, from), a, key)
	if isDelivery(err) {
		return nil // in the log: the customer's channel delivers it
	}
	return err
}

// isDelivery reports whether err is a delivery failure: the activity is in the log and the
// outbox goes on delivering it.
func isDelivery(err error) bool {
	var de *bridge.DeliveryError
	return errors.As(err, &de)
}

// notice is a message from the contact center itself.
func notice(text string) *activity.Activity {
	from := systemAccount
	return &activity.Activity{Type: activity.TypeMessage, Text: text, From: &from}
}

// account is how a Salesforce participant appears to the customer.
func account(p participant, name string) activity.ChannelAccount {
	if name == "" {
		name = p.Role
	}
	return activity.ChannelAccount{ID: "salesforce:" + strings.ToLower(p.Role) + ":" + p.Subject, Name: name}
}

// sameID compares two UUIDs, case aside.
func sameID(a, b string) bool { return a != "" && strings.EqualFold(a, b) }
