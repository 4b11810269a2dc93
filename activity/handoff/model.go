package handoff

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bfbridge/bfbridge/activity"
)

// Dialect names a wire convention for handoff signals.
type Dialect string

// Dialects. See MAPPING.md for what each carries where.
const (
	// DialectOmnichannel is Dynamics 365 Omnichannel's channelData convention: tags commands
	// (Escalate, EndConversation) on messages, deliveryMode "bridged", and the context events
	// Omnichannel sends a bot.
	DialectOmnichannel Dialect = "omnichannel"
	// DialectOmnichannelCustom is a message a Direct Line custom channel posts into
	// Omnichannel, with channelData.conversationcontext and channelData.customercontext.
	DialectOmnichannelCustom Dialect = "omnichannel-customchannel"
	// DialectCopilot is Copilot Studio's handoff.initiate event with va_* and topic variables,
	// and its CloseOmnichannelConversation variable.
	DialectCopilot Dialect = "copilot"
	// DialectBotFramework is the Bot Framework handoff protocol (handoff.initiate and
	// handoff.status events, as botbuilder's EventFactory builds them) and endOfConversation.
	DialectBotFramework Dialect = "botframework"
	// DialectHealthBot is Azure Health Bot's Omnichannel bridge: a message with text and
	// Omnichannel tags, sent by session.sendChannelData. On the wire it is the Omnichannel
	// command; only DetectFrom can label it.
	DialectHealthBot Dialect = "healthbot"
)

// SignalKind says what a handoff signal asks for.
type SignalKind string

// Signal kinds.
const (
	// SignalNone: the activity carries no handoff signal.
	SignalNone SignalKind = "none"
	// SignalEscalation: the bot asks for a human agent.
	SignalEscalation SignalKind = "escalation"
	// SignalEnd: the conversation is to end.
	SignalEnd SignalKind = "end"
	// SignalStatus: a hub reports the state of an escalation.
	SignalStatus SignalKind = "status"
	// SignalContext: a contact centre hands the bot its routing context (Omnichannel's context
	// event).
	SignalContext SignalKind = "context"
)

// Signal is what Detect reads from one activity. Exactly one of Escalation, End, Status and
// Context is set, matching Kind; none is set for SignalNone.
type Signal struct {
	Kind       SignalKind      `json:"kind"`
	Dialect    Dialect         `json:"dialect,omitempty"`
	Escalation *Escalation     `json:"escalation,omitempty"`
	End        *End            `json:"end,omitempty"`
	Status     *Status         `json:"status,omitempty"`
	Context    *InboundContext `json:"context,omitempty"`
	// Tags is the parsed channelData.tags, when the activity has them.
	Tags *Tags `json:"tags,omitempty"`
	// Notes says what reading the activity had to ignore or repair.
	Notes []Note `json:"notes,omitempty"`
}

// Escalation is the canonical request for a human agent, whatever dialect it came in.
type Escalation struct {
	// Source says where the request came from: the envelope of the activity that carried it.
	Source Source `json:"source"`
	// Context holds the routing context variables with their types and case-exact names: every
	// variable the dialect carries, including the ones also read into the typed fields below.
	Context Variables `json:"context,omitempty"`
	// AgentNote is the note for the human agent only (Omnichannel Escalate text, Copilot
	// va_AgentMessage, Bot Framework MessageToAgent).
	AgentNote string `json:"agentNote,omitempty"`
	// Customer identifies the customer, as far as the dialect says.
	Customer Customer `json:"customer,omitzero"`
	// Reason says why, and what the conversation was about.
	Reason Reason `json:"reason,omitzero"`
	// Transcript is the conversation so far, when the dialect sends it.
	Transcript Transcript `json:"transcript,omitzero"`
	// Links name contact-centre records the conversation belongs to.
	Links Links `json:"links,omitzero"`
}

// Source is the envelope of the activity that carried a signal.
type Source struct {
	Dialect        Dialect `json:"dialect,omitempty"`
	ChannelID      string  `json:"channelId,omitempty"`
	ServiceURL     string  `json:"serviceUrl,omitempty"`
	ConversationID string  `json:"conversationId,omitempty"`
	BotID          string  `json:"botId,omitempty"`
	BotName        string  `json:"botName,omitempty"`
	// ChannelType is a custom channel's channelData.channeltype (DialectOmnichannelCustom).
	ChannelType string `json:"channelType,omitempty"`
}

// Customer identifies the customer.
type Customer struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Phone  string `json:"phone,omitempty"`
	Locale string `json:"locale,omitempty"`
}

// Reason says why a conversation is escalated and what it was about.
type Reason struct {
	// Text is why, in words, when a source says so. No recorded dialect carries it: parsers
	// leave it empty, and emitters use it only in the summary they write for the agent.
	Text string `json:"text,omitempty"`
	// LastTopic is the last topic the customer's words triggered (Copilot va_LastTopic).
	LastTopic string `json:"lastTopic,omitempty"`
	// Topics are the topics the customer's words triggered (Copilot va_Topics).
	Topics []string `json:"topics,omitempty"`
	// LastPhrases are the customer's last words (Copilot va_LastPhrase or va_LastPhrases).
	LastPhrases []string `json:"lastPhrases,omitempty"`
	// Phrases are the customer's words that triggered topics (Copilot va_Phrases).
	Phrases []string `json:"phrases,omitempty"`
}

// Transcript is the conversation so far: activities sent inline, or a URL to fetch them from
// (recorded only; this package fetches nothing), or both.
type Transcript struct {
	Activities []*activity.Activity `json:"activities,omitempty"`
	URL        string               `json:"url,omitempty"`
}

// IsZero reports whether t holds nothing.
func (t Transcript) IsZero() bool { return len(t.Activities) == 0 && t.URL == "" }

// Links name contact-centre records: a case (incident) and the customer's contact or account.
type Links struct {
	CaseNumber   string `json:"caseNumber,omitempty"`
	CaseID       string `json:"caseId,omitempty"`
	CaseTitle    string `json:"caseTitle,omitempty"`
	ContactID    string `json:"contactId,omitempty"`
	AccountID    string `json:"accountId,omitempty"`
	CustomerID   string `json:"customerId,omitempty"`
	CustomerType string `json:"customerType,omitempty"`
}

// End is the canonical request to end a conversation.
type End struct {
	Source Source `json:"source"`
	// Reason is why: one of the End reasons below, or empty when the dialect does not say.
	Reason string `json:"reason,omitempty"`
	// Code is the endOfConversation code as it came on the wire, when there was one.
	Code string `json:"code,omitempty"`
	// Text is the activity's text, when there was one.
	Text string `json:"text,omitempty"`
	// Context holds the variables sent with the end (Omnichannel EndConversation context,
	// endOfConversation value members); usually none.
	Context Variables `json:"context,omitempty"`
	// CaseNumber is a case to link the conversation to (Omnichannel context CaseNumber).
	CaseNumber string `json:"caseNumber,omitempty"`
}

// End reasons.
const (
	EndCompleted = "completed" // the bot finished its task (completedSuccessfully)
	EndCustomer  = "customer"  // the customer cancelled or left (userCancelled)
	EndTimeout   = "timeout"   // inactivity (botTimedOut)
	EndFailure   = "failure"   // an error (botIssuedInvalidMessage, channelFailed)
	EndBot       = "bot"       // the bot ended it without saying why (Omnichannel ConversationEndedByBot)
	EndAgent     = "agent"     // the human agent ended it
)

// endOfConversation codes (botframework.md §1.1).
const (
	CodeUnknown                 = "unknown"
	CodeCompletedSuccessfully   = "completedSuccessfully"
	CodeUserCancelled           = "userCancelled"
	CodeBotTimedOut             = "botTimedOut"
	CodeBotIssuedInvalidMessage = "botIssuedInvalidMessage"
	CodeChannelFailed           = "channelFailed"
)

// Status is the state of an escalation, as a hub reports it.
type Status struct {
	Source  Source `json:"source"`
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// Status states. The Bot Framework handoff protocol defines accepted, failed and completed;
// pending (queued, no agent yet) is the bridge's own.
const (
	StatePending   = "pending"
	StateAccepted  = "accepted"
	StateFailed    = "failed"
	StateCompleted = "completed"
)

// InboundContext is the routing context a contact centre gives the bot: Omnichannel's context
// event (startConversation, or conversationUpdate for voice).
type InboundContext struct {
	Source Source `json:"source"`
	// Event is the event name (startConversation, omnichannelSetContext) or, for voice, the
	// activity type conversationUpdate.
	Event string `json:"event,omitempty"`
	// Variables are the context variables, types and names as they came.
	Variables Variables `json:"variables,omitempty"`
	// Customer is the sender (from) and what the variables say; Links are read from the
	// variables.
	Customer Customer `json:"customer,omitzero"`
	Links    Links    `json:"links,omitzero"`
	// LiveWorkItemID is Omnichannel's conversation (msdyn_liveworkitemid, msdyn_ocliveworkitemid).
	LiveWorkItemID string `json:"liveWorkItemId,omitempty"`
	// SourceChannelID is channelData.sourceChannelId ("omnichannel").
	SourceChannelID string `json:"sourceChannelId,omitempty"`
}

// Note records one thing a parser or an emitter had to ignore, convert, shorten or drop, so
// that nothing changes silently. Path names the place ("context.va_Topics", "value",
// "attachments[1]"); Code is stable, Message is for people.
type Note struct {
	Path    string   `json:"path"`
	Code    NoteCode `json:"code"`
	Message string   `json:"message"`
}

// NoteCode classifies a Note.
type NoteCode string

// Note codes.
const (
	NoteCoerced   NoteCode = "coerced"   // a value was converted to a type the target takes
	NoteTruncated NoteCode = "truncated" // a text was shortened to fit a limit
	NoteDropped   NoteCode = "dropped"   // a variable the target cannot take was left out
	NoteIgnored   NoteCode = "ignored"   // input the dialect does not define was not read
	NoteMalformed NoteCode = "malformed" // input was not of the documented shape
	NoteMissing   NoteCode = "missing"   // a field the protocol requires was absent
	NoteGenerated NoteCode = "generated" // text the source did not give was written
	// NoteInterpreted: the activity was read as another signal than its carrier suggests.
	NoteInterpreted NoteCode = "interpreted"
)

func (n Note) String() string { return n.Path + ": " + string(n.Code) + ": " + n.Message }

// notes collects Notes.
type notes []Note

func (ns *notes) add(path string, code NoteCode, format string, args ...any) {
	*ns = append(*ns, Note{Path: path, Code: code, Message: fmt.Sprintf(format, args...)})
}

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrMalformed: an activity carries what must be a handoff signal, but it cannot be read.
	ErrMalformed = errors.New("malformed handoff signal")
	// ErrUnknownCommand: channelData.tags holds a command type Omnichannel does not define.
	ErrUnknownCommand = errors.New("unknown omnichannel command")
	// ErrUnsupported: the dialect has no form for the signal (a status in Omnichannel tags).
	ErrUnsupported = errors.New("signal not expressible in the dialect")
	// ErrTooLarge: an emitted activity cannot be made to fit the dialect's size limit.
	ErrTooLarge = errors.New("activity over the size limit")

	errEmptyJSON = errors.New("empty JSON")
	errNotObject = errors.New("not a JSON object")
)

// TagsError says why channelData.tags could not be read.
type TagsError struct {
	// Tags is the tags text, shortened to 200 bytes.
	Tags string
	Err  error
}

func (e *TagsError) Error() string {
	return fmt.Sprintf("handoff: channelData.tags %q: %v", e.Tags, e.Err)
}

// Unwrap returns the cause, which wraps ErrMalformed or ErrUnknownCommand.
func (e *TagsError) Unwrap() error { return e.Err }

func sortStrings(s []string) { slices.Sort(s) }
