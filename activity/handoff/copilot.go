package handoff

import (
	"github.com/bfbridge/bfbridge/activity"
)

// parseHandoffInitiate reads a handoff.initiate event as Copilot Studio's or as plain Bot
// Framework, and as an end when Copilot's close variable is set.
func parseHandoffInitiate(bot Dialect, a *activity.Activity, tags *Tags, ns *notes) Signal {
	vars := valueObject(a, ns)
	copilot := hasCopilotVariables(vars)
	switch bot {
	case DialectCopilot:
		copilot = true
	case DialectBotFramework:
		copilot = false
	}
	if name, ok := closeRequested(vars); ok {
		ns.add("value."+name, NoteInterpreted, "handoff.initiate with %s true is read as an end, not an escalation", name)
		return Signal{Kind: SignalEnd, Dialect: DialectCopilot, Tags: tags, End: copilotEnd(a, vars, name)}
	}
	if copilot {
		return Signal{Kind: SignalEscalation, Dialect: DialectCopilot, Tags: tags, Escalation: parseCopilot(a, vars, ns)}
	}
	return Signal{Kind: SignalEscalation, Dialect: DialectBotFramework, Tags: tags, Escalation: parseBotFramework(a, vars, ns)}
}

// parseCopilot reads Copilot Studio's handoff.initiate (PVAS activities.json; PP
// advanced-hand-off.md): every value member is a context variable, its type kept — the va_*
// variables (va_Scope, va_LastTopic, va_Topics, va_LastPhrase or va_LastPhrases, va_Phrases,
// va_ConversationId, va_AgentMessage, va_BotId, va_BotName, va_Language), MSCallerId, and the
// user-defined topic variables. The typed fields are read from the well-known names (see
// lift.go); the transcript from the attachment named Transcript; the customer from
// relatesTo.user.
func parseCopilot(a *activity.Activity, vars Variables, ns *notes) *Escalation {
	e := &Escalation{Source: sourceOf(DialectCopilot, a), Context: vars}
	e.Customer.ID, e.Customer.Name = customerOf(a)
	e.Transcript = readAttachments(a.Attachments, ns)
	e.lift()
	return e
}

// EmitCopilot writes an escalation as Copilot Studio's handoff.initiate: the value holds
// e.Context with its types kept, plus va_AgentMessage, va_LastTopic, va_Topics,
// va_LastPhrase (one phrase; several are written as va_LastPhrases) and va_Phrases from the
// typed fields when no variable of theirs is present; the transcript is the attachment
// Transcript; the customer is the recipient.
func EmitCopilot(e *Escalation) (*activity.Activity, []Note, error) {
	a := envelope(activity.TypeEvent, e.Source)
	a.Name = EventHandoffInitiate
	a.Recipient = recipientOf(e.Customer)
	if err := setValue(a, e.complete(copilotCompletions)); err != nil {
		return nil, nil, err
	}
	atts, err := transcriptAttachments(e.Transcript)
	if err != nil {
		return nil, nil, err
	}
	a.Attachments = atts
	return a, nil, nil
}

// copilotEnd reads an end asked for by Copilot's close variable (D365
// configure-bot-virtual-agent.md: a flow output CloseOmnichannelConversation = bool(true), then
// an End or Transfer node). The other variables are kept in End.Context.
func copilotEnd(a *activity.Activity, vars Variables, closeName string) *End {
	e := &End{Source: sourceOf(DialectCopilot, a), Code: a.Code, Text: a.Text, Context: vars.Clone()}
	delete(e.Context, closeName)
	if len(e.Context) == 0 {
		e.Context = nil
	}
	e.Reason = reasonOf(a.Code)
	if e.Reason == "" {
		e.Reason = EndBot
	}
	e.Context.fill(&e.CaseNumber, namesCaseNumber)
	return e
}

// EmitCopilotEnd writes an end as Copilot Studio asks Omnichannel for one: an endOfConversation
// whose value holds End.Context and CloseOmnichannelConversation true. How Copilot puts the
// variable on the wire is not documented; this is the form Detect reads back.
func EmitCopilotEnd(e *End) (*activity.Activity, []Note, error) {
	a, ns, err := EmitEndOfConversation(e)
	if err != nil {
		return nil, nil, err
	}
	vars := e.Context.Clone()
	if vars == nil {
		vars = Variables{}
	}
	for _, n := range namesClose {
		delete(vars, n)
	}
	vars[namesClose[0]] = Boolean(true)
	if err := setValue(a, vars); err != nil {
		return nil, nil, err
	}
	return a, ns, nil
}
