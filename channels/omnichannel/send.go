package omnichannel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// Send implements bridge.Channel: it delivers what the Hub relays to the Omnichannel customer.
//
//   - message: a bridged message (channelData.deliveryMode "bridged"), split when over the
//     size limit, to {serviceUrl}v3/conversations/{id}/activities, or …/activities/{replyToId}
//     when it answers an activity of Omnichannel's.
//   - endOfConversation (the bot's, or the Hub's when it ends the conversation, inactivity
//     included): the agent-only EndConversation command — unless the conversation was handed
//     off to Omnichannel, which owns it from then on.
//   - typing, events, traces and the rest: not sent. Omnichannel shows no typing from bots
//     (escalation.md §1, limitations) and takes no events.
//
// A leg without a serviceUrl is the contact center's side of a conversation in escalation
// (the Hub's agent leg, set before Escalate is called): the customer's words already are in
// Omnichannel, so nothing is sent.
func (c *Channel) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if to.ServiceURL == "" {
		// The agent leg's conversation id is the bridge conversation's own.
		c.log.Debug().Str("conv_id", to.ConversationID).Str("activity_id", a.ID).Str("type", a.Type).Msg("nothing to send on the contact center's leg")
		return "", nil
	}
	convID := ConversationID(to.ConversationID)
	log := c.log.With().Str("conv_id", convID).Logger() // post adds each outbound activity's id
	switch a.Type {
	case activity.TypeMessage:
		return c.sendMessage(ctx, convID, to, a, log)
	case activity.TypeEndOfConversation:
		return c.sendEnd(ctx, convID, to, a, log)
	}
	log.Debug().Str("activity_id", a.ID).Str("type", a.Type).Msg("not sent to omnichannel")
	return "", nil
}

// sendMessage sends a bot message as one or more bridged messages.
func (c *Channel) sendMessage(ctx context.Context, convID string, to bridge.Leg, a *activity.Activity, log zerolog.Logger) (string, error) {
	alog := log.With().Str("activity_id", a.ID).Logger()
	out := a.Clone()
	c.address(ctx, out, convID, to)
	out.ReplyToID = c.replyTarget(ctx, convID, a.ReplyToID)
	if err := handoff.MarkBridged(out); err != nil {
		return "", deliveryError(to, err)
	}
	parts, dropped, err := splitMessage(out, c.cfg.MaxMessageBytes)
	if err != nil {
		alog.Warn().Err(err).Msg("bot message cannot be sent to omnichannel")
		return "", deliveryError(to, err)
	}
	if dropped > 0 {
		alog.Warn().Int("attachments", dropped).Msg("attachments over the message limit replaced by a notice")
	}
	if len(parts) > 1 {
		for i, p := range parts {
			p.ID = a.ID + "#" + strconv.Itoa(i+1)
		}
		alog.Info().Int("parts", len(parts)).Msg("bot message split to fit the omnichannel message limit")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SendTimeout)
	defer cancel()
	unlock := c.outbound.Lock(to.ConversationID)
	defer unlock()
	var first string
	for i, p := range parts {
		id, err := c.post(ctx, to, p, kindMessage, log)
		if err != nil {
			alog.Warn().Err(err).Int("part", i+1).Msg("bot message not delivered to omnichannel")
			return first, deliveryError(to, err)
		}
		if i == 0 {
			first = id
		}
	}
	return first, nil
}

// sendEnd sends the EndConversation command for an endOfConversation.
func (c *Channel) sendEnd(ctx context.Context, convID string, to bridge.Leg, a *activity.Activity, log zerolog.Logger) (string, error) {
	alog := log.With().Str("activity_id", a.ID).Logger()
	if conv, err := c.hub.Conversation(ctx, convID); err == nil && conv.Agent != nil && conv.Agent.Channel == Name {
		// Handed off: a human agent may have the conversation; the bot's end is not Omnichannel's.
		alog.Info().Msg("end not sent: the conversation was handed off to omnichannel")
		return "", nil
	}
	end := &handoff.End{Code: a.Code, Text: a.Text}
	if sig, err := handoff.Detect(a); err == nil && sig.Kind == handoff.SignalEnd && sig.End != nil {
		end = sig.End
	}
	end.Source = handoff.Source{}
	cmd, notes, err := handoff.EmitOmnichannelEnd(end, handoff.CoerceOptions{NumberVariables: c.cfg.NumberVariables})
	if err != nil {
		return "", deliveryError(to, err)
	}
	logNotes(alog, notes)
	c.address(ctx, cmd, convID, to)
	cmd.ID = a.ID
	if cut, err := fitCommand(cmd, c.cfg.MaxMessageBytes); err != nil {
		alog.Warn().Err(err).Msg("end cannot be sent to omnichannel")
		return "", deliveryError(to, err)
	} else if cut {
		alog.Info().Msg("end text trimmed to fit the omnichannel message limit")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SendTimeout)
	defer cancel()
	unlock := c.outbound.Lock(to.ConversationID)
	defer unlock()
	id, err := c.post(ctx, to, cmd, kindEnd, log)
	if err != nil {
		alog.Warn().Err(err).Msg("end not delivered to omnichannel")
		return "", deliveryError(to, err)
	}
	alog.Info().Str("reason", end.Reason).Msg("end sent to omnichannel")
	return id, nil
}

// Escalate implements bridge.Escalator: Omnichannel takes the conversation (T1). It sends
// Config.EscalationNotice to the customer when set, then exactly one agent-only Escalate
// command (handoff.EmitOmnichannel: text = the agent note, or a summary of the transcript;
// tags = {"type":"Escalate","context":{…}} with the escalation's variables, mapped and
// coerced). The variables Omnichannel gave the conversation (its context event) are not sent
// back: Omnichannel has them. The conversation enters bridge.StateHandedOff: Omnichannel reruns
// its routing and owns the conversation from then on; the bot's later messages are not relayed.
//
// The Hub holds the conversation's state lock during the call; Escalate only reads the store
// and talks to Omnichannel. After an answer that leaves the outcome unknown (502, 504, a lost
// answer) the command is not sent again and the hand-off is reported done, with an error
// logged (see the retry policy in post.go).
func (c *Channel) Escalate(ctx context.Context, conv *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	to := conv.Customer
	if to.Channel != Name || to.ServiceURL == "" {
		return bridge.Leg{}, "", fmt.Errorf("omnichannel: escalate %s: %w", conv.ID, ErrNotOmnichannel)
	}
	log := c.log.With().Str("conv_id", conv.ID).Logger()
	// The escalation is the bridge's to complete once begun, whatever becomes of the call that
	// carried the bot's request (a bot's Connector call may be cancelled): bounded, not cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.SendTimeout)
	defer cancel()
	last, err := c.hub.Last(ctx, conv.ID)
	if err != nil {
		return bridge.Leg{}, "", fmt.Errorf("omnichannel: escalate %s: %w", conv.ID, err)
	}
	base := bridge.FormatActivityID(conv.ID, last) // the bot's escalation, just appended
	cmd, notes, err := handoff.EmitOmnichannel(e, handoff.CoerceOptions{NumberVariables: c.cfg.NumberVariables})
	if err != nil {
		return bridge.Leg{}, "", fmt.Errorf("omnichannel: escalate %s: %w", conv.ID, err)
	}
	logNotes(log, notes)
	c.address(ctx, cmd, conv.ID, to)
	cmd.ID = base + "#escalate"
	if cut, err := fitCommand(cmd, c.cfg.MaxMessageBytes); err != nil {
		return bridge.Leg{}, "", fmt.Errorf("omnichannel: escalate %s: %w", conv.ID, err)
	} else if cut {
		log.Info().Msg("escalation text trimmed to fit the omnichannel message limit")
	}

	unlock := c.outbound.Lock(to.ConversationID)
	defer unlock()
	if c.cfg.EscalationNotice != "" {
		notice, err := handoff.BridgedMessage(handoff.Source{}, c.cfg.EscalationNotice)
		if err == nil {
			c.address(ctx, notice, conv.ID, to)
			notice.ID = base + "#notice"
			_, err = c.post(ctx, to, notice, kindMessage, log)
		}
		if err != nil {
			log.Warn().Err(err).Msg("escalation notice not delivered; escalating all the same")
		}
	}
	_, err = c.post(ctx, to, cmd, kindEscalate, log)
	agent := bridge.Leg{Channel: Name, ConversationID: conv.ID, User: to.User, Bot: to.Bot}
	switch {
	case err == nil:
		log.Info().Int("variables", len(e.Context)).Msg("escalated to omnichannel")
	case errors.Is(err, ErrOutcomeUnknown):
		log.Error().Err(err).Msg("escalation outcome unknown; not sent again: omnichannel owns the conversation")
	default:
		return bridge.Leg{}, "", fmt.Errorf("omnichannel: escalate %s: %w", conv.ID, err)
	}
	return agent, bridge.StateHandedOff, nil
}

// address makes out an activity from the bot to the Omnichannel customer of leg to, as
// botbuilder addresses a reply: serviceUrl, channelId and conversation as Omnichannel sent
// them, from = the bot's account there, recipient = the customer. timestamp and callerId are
// not sent (the channel stamps the time; callerId is no wire field).
func (c *Channel) address(ctx context.Context, out *activity.Activity, convID string, to bridge.Leg) {
	m := c.metaOf(ctx, convID)
	out.ServiceURL = to.ServiceURL
	out.ChannelID = m.ChannelID
	conv := m.Conversation
	conv.ID = to.ConversationID
	out.Conversation = &conv
	bot := to.Bot
	if bot.ID == "" {
		bot = activity.ChannelAccount{ID: c.cfg.AppID}
	}
	out.From = &bot
	out.Recipient = nil
	if to.User.ID != "" {
		user := to.User
		out.Recipient = &user
	}
	out.Timestamp = activity.Time{}
	out.CallerID = ""
	delete(out.Extra, "callerId")
}

// logNotes logs what an emitter changed, by path and code: never the values.
func logNotes(log zerolog.Logger, notes []handoff.Note) {
	if len(notes) == 0 {
		return
	}
	what := make([]string, len(notes))
	for i, n := range notes {
		what[i] = n.Path + ":" + string(n.Code)
	}
	log.Info().Strs("notes", what).Msg("omnichannel command adjusted")
}
