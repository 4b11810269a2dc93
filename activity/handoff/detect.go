package handoff

import (
	"fmt"

	"github.com/bfbridge/bfbridge/activity"
)

// Event names of the Bot Framework handoff protocol (botbuilder handoffEventNames.ts), matched
// case-exactly.
const (
	EventHandoffInitiate = "handoff.initiate"
	EventHandoffStatus   = "handoff.status"
)

// Detect tells which handoff signal an activity carries, in which dialect, and reads it into
// the canonical model. It is DetectFrom with no knowledge of the sender.
func Detect(a *activity.Activity) (Signal, error) { return DetectFrom("", a) }

// DetectFrom is Detect for an activity from a sender known to speak the dialect bot (empty
// when unknown). The hint settles what the wire cannot: an Omnichannel tags command from a
// Health Bot is labelled DialectHealthBot, and a handoff.initiate is read as Copilot's (hint
// DialectCopilot) or as plain Bot Framework (hint DialectBotFramework) whatever its variables.
//
// The rules, first match wins:
//
//  1. type endOfConversation: an end (Bot Framework; Copilot when its value sets
//     CloseOmnichannelConversation).
//  2. event handoff.initiate: an escalation — Copilot's when the value has a va_* variable or
//     MSCallerId, Bot Framework's otherwise — or an end when the value sets
//     CloseOmnichannelConversation.
//  3. event handoff.status: a status (Bot Framework).
//  4. channelData.tags holding a command: an escalation (Escalate) or an end (EndConversation)
//     in the Omnichannel dialect (Health Bot with that hint).
//  5. an Omnichannel context event (startConversation, omnichannelSetContext or
//     conversationUpdate, marked by the OmnichannelContextMessage label, sourceChannelId
//     "omnichannel" or vnd.microsoft.msdyn.oc.data): context.
//  6. channelData.conversationcontext or customercontext: an escalation placed through an
//     Omnichannel custom channel.
//  7. anything else: SignalNone.
//
// Detect never fails on a signal it can recognise: what it cannot read is reported in
// Signal.Notes and the rest is used, because an escalation must not be lost to a malformed
// detail. It returns an error (a *TagsError wrapping ErrMalformed or ErrUnknownCommand, with
// Kind SignalNone) only when channelData.tags cannot be read at all, so that the kind cannot be
// known. A nil activity carries nothing.
func DetectFrom(bot Dialect, a *activity.Activity) (Signal, error) {
	if a == nil {
		return Signal{Kind: SignalNone}, nil
	}
	tags, tagNotes, err := ParseTags(a.ChannelDataField("tags"))
	if err != nil {
		return Signal{Kind: SignalNone, Dialect: DialectOmnichannel}, fmt.Errorf("handoff: detect: %w", err)
	}
	var ns notes
	ns = append(ns, tagNotes...)
	s := Signal{Kind: SignalNone, Tags: tags}
	switch {
	case a.Type == activity.TypeEndOfConversation:
		s.Kind, s.End, s.Dialect = SignalEnd, parseEndOfConversation(a, &ns), DialectBotFramework
		if s.End.Source.Dialect == DialectCopilot {
			s.Dialect = DialectCopilot
		}
	case a.Type == activity.TypeEvent && a.Name == EventHandoffInitiate:
		s = parseHandoffInitiate(bot, a, tags, &ns)
	case a.Type == activity.TypeEvent && a.Name == EventHandoffStatus:
		s.Kind, s.Dialect, s.Status = SignalStatus, DialectBotFramework, parseStatus(a, &ns)
	case tags != nil && tags.Command != nil:
		d := DialectOmnichannel
		if bot == DialectHealthBot {
			d = DialectHealthBot
		}
		s.Dialect = d
		if a.Type != activity.TypeMessage {
			ns.add("type", NoteMalformed, "an Omnichannel command on a %q activity; commands are messages", a.Type)
		}
		if tags.Command.Type == CommandEscalate {
			s.Kind, s.Escalation = SignalEscalation, parseOmnichannelEscalate(d, a, tags.Command)
		} else {
			s.Kind, s.End = SignalEnd, parseOmnichannelEnd(d, a, tags.Command)
		}
	case isContextEvent(a, tags):
		s.Kind, s.Dialect, s.Context = SignalContext, DialectOmnichannel, parseContextEvent(a, &ns)
	case isCustomChannel(a):
		s.Kind, s.Dialect, s.Escalation = SignalEscalation, DialectOmnichannelCustom, parseCustomChannel(a, &ns)
	}
	if len(ns) > 0 {
		s.Notes = ns
	}
	return s, nil
}

// EmitOptions tune Emit.
type EmitOptions struct {
	// Coerce tunes the coercion of context variables for Omnichannel.
	Coerce CoerceOptions
	// ChannelType is the custom channel's channeltype (DialectOmnichannelCustom).
	ChannelType string
}

// Emit writes a signal as an activity of dialect d, with notes on what had to change. The
// activity carries the signal and the envelope the model keeps (Source: channelId, serviceUrl,
// conversation, the bot as from); the caller addresses it to its leg. It returns ErrUnsupported
// when d has no form for the signal:
//
//   - escalation: every dialect;
//   - end: Omnichannel and Health Bot (EndConversation command), Copilot (endOfConversation
//     with CloseOmnichannelConversation), Bot Framework and the custom channel
//     (endOfConversation);
//   - status: Bot Framework (handoff.status);
//   - context: Omnichannel (context event).
func Emit(s Signal, d Dialect, opt EmitOptions) (*activity.Activity, []Note, error) {
	unsupported := fmt.Errorf("handoff: emit %s as %s: %w", s.Kind, d, ErrUnsupported)
	switch {
	case s.Kind == SignalEscalation && s.Escalation != nil:
		switch d {
		case DialectOmnichannel:
			return EmitOmnichannel(s.Escalation, opt.Coerce)
		case DialectHealthBot:
			return EmitHealthBot(s.Escalation, opt.Coerce)
		case DialectCopilot:
			return EmitCopilot(s.Escalation)
		case DialectBotFramework:
			return EmitBotFramework(s.Escalation)
		case DialectOmnichannelCustom:
			return EmitCustomChannel(s.Escalation, opt.ChannelType, opt.Coerce)
		}
	case s.Kind == SignalEnd && s.End != nil:
		switch d {
		case DialectOmnichannel, DialectHealthBot:
			return EmitOmnichannelEnd(s.End, opt.Coerce)
		case DialectCopilot:
			return EmitCopilotEnd(s.End)
		case DialectBotFramework, DialectOmnichannelCustom:
			return EmitEndOfConversation(s.End)
		}
	case s.Kind == SignalStatus && s.Status != nil:
		if d == DialectBotFramework {
			return EmitStatus(s.Status)
		}
	case s.Kind == SignalContext && s.Context != nil:
		if d == DialectOmnichannel {
			return EmitContextEvent(s.Context)
		}
	}
	return nil, nil, unsupported
}

// sourceOf reads the envelope of a signal sent by a bot.
func sourceOf(d Dialect, a *activity.Activity) Source {
	s := Source{Dialect: d, ChannelID: a.ChannelID, ServiceURL: a.ServiceURL}
	if a.Conversation != nil {
		s.ConversationID = a.Conversation.ID
	}
	if a.From != nil {
		s.BotID, s.BotName = a.From.ID, a.From.Name
	}
	return s
}

// envelope starts an activity of type typ from a Source, the bot as its sender.
func envelope(typ string, s Source) *activity.Activity {
	a := &activity.Activity{Type: typ, ChannelID: s.ChannelID, ServiceURL: s.ServiceURL}
	if s.ConversationID != "" {
		a.Conversation = &activity.ConversationAccount{ID: s.ConversationID}
	}
	if s.BotID != "" || s.BotName != "" {
		a.From = &activity.ChannelAccount{ID: s.BotID, Name: s.BotName}
	}
	return a
}

// customerOf reads the customer's account from relatesTo.user, or else from recipient: where
// botbuilder's EventFactory and Copilot put it.
func customerOf(a *activity.Activity) (id, name string) {
	if a.RelatesTo != nil && a.RelatesTo.User != nil && (a.RelatesTo.User.ID != "" || a.RelatesTo.User.Name != "") {
		return a.RelatesTo.User.ID, a.RelatesTo.User.Name
	}
	if a.Recipient != nil {
		return a.Recipient.ID, a.Recipient.Name
	}
	return "", ""
}

// recipientOf writes the customer's account as the recipient.
func recipientOf(c Customer) *activity.ChannelAccount {
	if c.ID == "" && c.Name == "" {
		return nil
	}
	return &activity.ChannelAccount{ID: c.ID, Name: c.Name}
}

// valueObject reads an activity's value as variables. A missing or null value gives none; a
// value that is not an object gives none and a note.
func valueObject(a *activity.Activity, ns *notes) Variables {
	if len(a.Value) == 0 || isNull(a.Value) {
		return nil
	}
	vars, err := ParseVariables(a.Value)
	if err != nil {
		ns.add("value", NoteMalformed, "value is not a JSON object; no variables read")
		return nil
	}
	return vars
}

// setValue writes variables as an activity's value (an empty object when there are none).
func setValue(a *activity.Activity, vars Variables) error {
	if vars == nil {
		vars = Variables{}
	}
	b, err := activity.Marshal(vars)
	if err != nil {
		return fmt.Errorf("handoff: value: %w", err)
	}
	a.Value = b
	return nil
}
