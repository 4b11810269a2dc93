package handoff

import (
	"encoding/json"
	"fmt"

	"github.com/bfbridge/bfbridge/activity"
)

// Members of the handoff.initiate value as BotBuilder-Samples' handoff library writes and
// reads it (DynamicsOmnichannelMiddleware.cs: Context = value.Context, Text =
// value.MessageToAgent).
const (
	memberMessageToAgent = "MessageToAgent"
	memberContext        = "Context"
)

// parseBotFramework reads a Bot Framework handoff.initiate (botframework.md §6): value is the
// hub-specific routing context. It is read in one of two shapes:
//
//   - wrapped, as the BotBuilder-Samples handoff library writes it: an object whose only members
//     are MessageToAgent (a string: the agent note) and Context (an object: the variables), at
//     least one present, names case-exact;
//   - flat, as the protocol's own example {"Skill":"credit cards"}: every member a variable,
//     except a string MessageToAgent, which is the agent note in every shape (bots write
//     {"Skill":"cards","MessageToAgent":"VIP"} as often as the wrapped shape), and an object
//     Context, whose members are variables too (Context's value wins a name both give).
//
// The customer is relatesTo.user (EventFactory sets relatesTo to the conversation reference of
// the customer's activity), else the recipient; the transcript the attachment named
// Transcript, inline or by contentUrl. vars is the value read as an object (nil when it is
// not one, which the caller has noted). conversation.id is required by the protocol; its
// absence is noted.
func parseBotFramework(a *activity.Activity, vars Variables, ns *notes) *Escalation {
	e := &Escalation{Source: sourceOf(DialectBotFramework, a)}
	if e.Source.ConversationID == "" {
		ns.add("conversation.id", NoteMissing, "handoff.initiate requires conversation.id")
	}
	e.Customer.ID, e.Customer.Name = customerOf(a)
	if note, inner, ok := wrappedValue(a.Value); ok {
		e.AgentNote, e.Context = note, inner
	} else {
		e.AgentNote, e.Context = flatValue(vars, ns)
	}
	e.Transcript = readAttachments(a.Attachments, ns)
	e.lift()
	return e
}

// wrappedValue reads the wrapped shape {MessageToAgent, Context}.
func wrappedValue(raw json.RawMessage) (string, Variables, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return "", nil, false
	}
	for k := range m {
		if k != memberMessageToAgent && k != memberContext {
			return "", nil, false
		}
	}
	var note string
	if r, ok := m[memberMessageToAgent]; ok && !isNull(r) && json.Unmarshal(r, &note) != nil {
		return "", nil, false
	}
	var vars Variables
	if r, ok := m[memberContext]; ok && !isNull(r) {
		v, err := ParseVariables(r)
		if err != nil {
			return "", nil, false
		}
		vars = v
	}
	return note, vars, true
}

// flatValue reads the flat shape: the agent note from a string MessageToAgent, the variables
// from the other members and from the members of an object Context. A MessageToAgent or a
// Context of another type stays a variable, as the protocol's flat shape makes it.
func flatValue(vars Variables, ns *notes) (string, Variables) {
	note, isText := vars[memberMessageToAgent].Str()
	var inner Variables
	ctx, hasCtx := vars[memberContext]
	isObject := false
	if hasCtx {
		v, err := ParseVariables(ctx.Raw())
		inner, isObject = v, err == nil
	}
	if !isText && !isObject {
		return "", vars
	}
	out := vars.Clone()
	if isText {
		delete(out, memberMessageToAgent)
	}
	if isObject {
		delete(out, memberContext)
		for name, v := range inner {
			if _, clash := out[name]; clash {
				ns.add("value."+name, NoteIgnored, "%s is given beside Context and in it; Context's value is kept", name)
			}
			if out == nil {
				out = Variables{}
			}
			out[name] = v
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return note, out
}

// EmitBotFramework writes an escalation as a Bot Framework handoff.initiate in the wrapped
// shape {"MessageToAgent": agent note (omitted when empty), "Context": variables}, the shape
// the handoff library's Omnichannel middleware reads. Context is e.Context plus Email, Phone
// and CaseNumber from the typed fields when no variable of theirs is present; the customer is
// the recipient; the transcript the attachment Transcript (inline, or by contentUrl).
func EmitBotFramework(e *Escalation) (*activity.Activity, []Note, error) {
	var ns notes
	a := envelope(activity.TypeEvent, e.Source)
	a.Name = EventHandoffInitiate
	if a.Conversation == nil {
		ns.add("conversation.id", NoteMissing, "handoff.initiate requires conversation.id; the caller must set it")
	}
	a.Recipient = recipientOf(e.Customer)
	v := struct {
		MessageToAgent string    `json:"MessageToAgent,omitempty"`
		Context        Variables `json:"Context"`
	}{e.AgentNote, e.complete(botFrameworkCompletions)}
	b, err := activity.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("handoff: handoff.initiate value: %w", err)
	}
	a.Value = b
	if a.Attachments, err = transcriptAttachments(e.Transcript); err != nil {
		return nil, nil, err
	}
	return a, ns, nil
}

// parseStatus reads handoff.status: value {state, message?} (EventFactory.createHandoffStatus).
// A state other than accepted, failed, completed or pending is kept and noted.
func parseStatus(a *activity.Activity, ns *notes) *Status {
	s := &Status{Source: sourceOf(DialectBotFramework, a)}
	var v struct {
		State   *string `json:"state"`
		Message *string `json:"message"`
	}
	if len(a.Value) == 0 || json.Unmarshal(a.Value, &v) != nil || a.Value[0] != '{' {
		ns.add("value", NoteMalformed, "handoff.status value is not {state, message}")
		return s
	}
	if v.State == nil {
		ns.add("value.state", NoteMissing, "handoff.status has no state")
	} else {
		s.State = *v.State
	}
	if v.Message != nil {
		s.Message = *v.Message
	}
	switch s.State {
	case StateAccepted, StateFailed, StateCompleted, StatePending, "":
	default:
		ns.add("value.state", NoteIgnored, "state %q is not a documented handoff state; kept as is", s.State)
	}
	return s
}

// EmitStatus writes a status as handoff.status with value {state, message?} (message omitted
// when empty, as botbuilder-js writes it). pending is the bridge's own state, not the
// protocol's; it is written with a note (bots must not reject a status, and ignore what they
// do not know).
func EmitStatus(s *Status) (*activity.Activity, []Note, error) {
	var ns notes
	if s.State == StatePending {
		ns.add("value.state", NoteIgnored, "pending is not a Bot Framework handoff state; receivers may ignore it")
	}
	a := envelope(activity.TypeEvent, s.Source)
	a.Name = EventHandoffStatus
	b, err := activity.Marshal(struct {
		State   string `json:"state"`
		Message string `json:"message,omitempty"`
	}{s.State, s.Message})
	if err != nil {
		return nil, nil, fmt.Errorf("handoff: handoff.status value: %w", err)
	}
	a.Value = b
	return a, ns, nil
}

// parseEndOfConversation reads endOfConversation: its code and text, and its value's members
// as End.Context. Copilot's close variable in the value makes it Copilot's end.
func parseEndOfConversation(a *activity.Activity, ns *notes) *End {
	vars := valueObject(a, ns)
	if name, ok := closeRequested(vars); ok {
		return copilotEnd(a, vars, name)
	}
	e := &End{Source: sourceOf(DialectBotFramework, a), Code: a.Code, Text: a.Text, Context: vars}
	e.Reason = reasonOf(a.Code)
	if e.Reason == "" && a.Code != "" && a.Code != CodeUnknown {
		ns.add("code", NoteIgnored, "code %q is not an endOfConversation code; kept as is", a.Code)
	}
	e.Context.fill(&e.CaseNumber, namesCaseNumber)
	return e
}

// reasonOf maps an endOfConversation code to an End reason; unknown and unrecognised codes give "".
func reasonOf(code string) string {
	switch code {
	case CodeCompletedSuccessfully:
		return EndCompleted
	case CodeUserCancelled:
		return EndCustomer
	case CodeBotTimedOut:
		return EndTimeout
	case CodeBotIssuedInvalidMessage, CodeChannelFailed:
		return EndFailure
	}
	return ""
}

// codeOf maps an End reason to an endOfConversation code; reasons without one give "".
func codeOf(reason string) string {
	switch reason {
	case EndCompleted:
		return CodeCompletedSuccessfully
	case EndCustomer:
		return CodeUserCancelled
	case EndTimeout:
		return CodeBotTimedOut
	case EndFailure:
		return CodeChannelFailed
	}
	return ""
}

// EmitEndOfConversation writes an end as endOfConversation: code = End.Code, or the code of
// End.Reason (completed → completedSuccessfully, customer → userCancelled, timeout →
// botTimedOut, failure → channelFailed; bot and agent have none); text = End.Text; value =
// End.Context when it has variables (plus CaseNumber when set and absent).
func EmitEndOfConversation(e *End) (*activity.Activity, []Note, error) {
	a := envelope(activity.TypeEndOfConversation, e.Source)
	a.Code = e.Code
	if a.Code == "" {
		a.Code = codeOf(e.Reason)
	}
	a.Text = e.Text
	vars := e.Context.Clone()
	if e.CaseNumber != "" && !vars.has(namesCaseNumber) {
		if vars == nil {
			vars = Variables{}
		}
		vars["CaseNumber"] = String(e.CaseNumber)
	}
	if len(vars) > 0 {
		if err := setValue(a, vars); err != nil {
			return nil, nil, err
		}
	}
	return a, nil, nil
}
