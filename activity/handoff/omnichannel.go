package handoff

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
)

// Omnichannel channelData members and values (bot-escalate-end-conversation.md, escalation.md §1).
const (
	// DeliveryModeBridged makes a bot message visible to the customer.
	DeliveryModeBridged = "bridged"
	// SourceChannelOmnichannel is channelData.sourceChannelId on Omnichannel's context events.
	SourceChannelOmnichannel = "omnichannel"
	// OCDataKey holds the voice channel's context in a conversationUpdate's channelData.
	OCDataKey = "vnd.microsoft.msdyn.oc.data"
	// Context event names: startConversation for most channels, omnichannelSetContext with the
	// Omnichannel bot SDK middleware, conversationUpdate (an activity type) for voice.
	EventStartConversation     = "startConversation"
	EventOmnichannelSetContext = "omnichannelSetContext"
)

// MarkBridged sets channelData.deliveryMode to "bridged", which Omnichannel requires on every
// bot message the customer is to see. Escalate and EndConversation commands are for the agent
// and must not be bridged.
func MarkBridged(a *activity.Activity) error {
	if err := a.SetChannelDataField("deliveryMode", DeliveryModeBridged); err != nil {
		return fmt.Errorf("handoff: bridged: %w", err)
	}
	return nil
}

// BridgedMessage returns a message the customer sees in Omnichannel: text from the bot named
// in s, with channelData.deliveryMode "bridged". Omnichannel's 2025 sample sends one beside each
// agent-only Escalate or EndConversation command, so that the customer is told what happens.
func BridgedMessage(s Source, text string) (*activity.Activity, error) {
	a := envelope(activity.TypeMessage, s)
	a.Text = text
	if err := MarkBridged(a); err != nil {
		return nil, err
	}
	return a, nil
}

// parseOmnichannelEscalate reads an Escalate command: the message text is the agent note and the
// command's context the variables. The customer's account (recipient) is not read: Omnichannel
// identifies customers by the Name, Email and Phone variables only.
func parseOmnichannelEscalate(d Dialect, a *activity.Activity, cmd *Command) *Escalation {
	e := &Escalation{Source: sourceOf(d, a), Context: cmd.Context.Clone(), AgentNote: a.Text}
	e.lift()
	return e
}

// parseOmnichannelEnd reads an EndConversation command: Omnichannel records it as ended by the
// bot (msdyn_statuschangereason 192350013 ConversationEndedByBot).
func parseOmnichannelEnd(d Dialect, a *activity.Activity, cmd *Command) *End {
	e := &End{Source: sourceOf(d, a), Reason: EndBot, Text: a.Text, Context: cmd.Context.Clone()}
	e.Context.fill(&e.CaseNumber, namesCaseNumber)
	return e
}

// EmitOmnichannel writes an escalation as Omnichannel's agent-only Escalate message: text = the
// agent note, or Summary(e) when there is none (with a note), and channelData.tags = the JSON
// string {"type":"Escalate","context":{…}}. The context is e.Context plus Name, Email, Phone
// and CaseNumber from the typed fields when no variable of theirs is present, coerced by
// CoerceOmnichannel. The message is not bridged: the customer does not see it. When the
// activity would pass OmnichannelMaxMessageBytes the text is shortened (with a note); if the
// context alone is too large the error wraps ErrTooLarge.
func EmitOmnichannel(e *Escalation, opt CoerceOptions) (*activity.Activity, []Note, error) {
	return emitCommand(e, opt)
}

func emitCommand(e *Escalation, opt CoerceOptions) (*activity.Activity, []Note, error) {
	var ns notes
	vars, cn := CoerceOmnichannel(e.complete(omnichannelCompletions), opt)
	ns = append(ns, cn...)
	text := e.AgentNote
	if text == "" {
		text = Summary(e)
		ns.add("text", NoteGenerated, "no agent note; the text is a summary of the escalation")
	}
	a := envelope(activity.TypeMessage, e.Source)
	tags, err := FormatCommand(CommandEscalate, vars)
	if err != nil {
		return nil, nil, err
	}
	if err := a.SetChannelDataField("tags", tags); err != nil {
		return nil, nil, fmt.Errorf("handoff: omnichannel escalate: %w", err)
	}
	if err := fitText(a, text, &ns); err != nil {
		return nil, nil, fmt.Errorf("handoff: omnichannel escalate: %w", err)
	}
	return a, ns, nil
}

// fitText sets a.Text to text, cut as needed for a to weigh at most OmnichannelMaxMessageBytes.
func fitText(a *activity.Activity, text string, ns *notes) error {
	a.Text = text
	size, err := encodedSize(a)
	if err != nil {
		return err
	}
	if size <= OmnichannelMaxMessageBytes {
		return nil
	}
	a.Text = ""
	base, err := encodedSize(a)
	if err != nil {
		return err
	}
	if base > OmnichannelMaxMessageBytes {
		return fmt.Errorf("%w: %d bytes without text, limit %d", ErrTooLarge, base, OmnichannelMaxMessageBytes)
	}
	// The longest prefix (at a rune boundary) that fits; the empty text fits.
	lo, hi := 0, len(text)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		a.Text = cutBytes(text, mid)
		size, err := encodedSize(a)
		if err != nil {
			return err
		}
		if size <= OmnichannelMaxMessageBytes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	a.Text = cutBytes(text, lo)
	ns.add("text", NoteTruncated, "the text was cut from %d to %d bytes to keep the message within %d bytes", len(text), len(a.Text), OmnichannelMaxMessageBytes)
	return nil
}

func encodedSize(a *activity.Activity) (int, error) {
	b, err := activity.Marshal(a)
	return len(b), err
}

// cutBytes returns the longest prefix of s of at most n bytes that ends at a rune boundary.
func cutBytes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// EmitOmnichannelEnd writes an end as Omnichannel's EndConversation message: text = End.Text
// (omitted when empty) and channelData.tags = {"type":"EndConversation","context":{…}} with
// End.Context (plus CaseNumber when set and absent) coerced by CoerceOmnichannel.
func EmitOmnichannelEnd(e *End, opt CoerceOptions) (*activity.Activity, []Note, error) {
	vars := e.Context.Clone()
	if e.CaseNumber != "" && !vars.has(namesCaseNumber) {
		if vars == nil {
			vars = Variables{}
		}
		vars["CaseNumber"] = String(e.CaseNumber)
	}
	coerced, ns := CoerceOmnichannel(vars, opt)
	a := envelope(activity.TypeMessage, e.Source)
	a.Text = e.Text
	tags, err := FormatCommand(CommandEndConversation, coerced)
	if err != nil {
		return nil, nil, err
	}
	if err := a.SetChannelDataField("tags", tags); err != nil {
		return nil, nil, fmt.Errorf("handoff: omnichannel end: %w", err)
	}
	return a, ns, nil
}

// isContextEvent reports whether a is an Omnichannel context event.
func isContextEvent(a *activity.Activity, tags *Tags) bool {
	named := (a.Type == activity.TypeEvent && (a.Name == EventStartConversation || a.Name == EventOmnichannelSetContext)) ||
		a.Type == activity.TypeConversationUpdate
	if !named {
		return false
	}
	var src string
	_ = json.Unmarshal(a.ChannelDataField("sourceChannelId"), &src)
	return tags.Has(LabelContextMessage) || src == SourceChannelOmnichannel || a.ChannelDataField(OCDataKey) != nil
}

// parseContextEvent reads Omnichannel's context event (bot-context-json-samples.md): the
// variables are the event's value or, for voice (conversationUpdate), the members of
// channelData["vnd.microsoft.msdyn.oc.data"]. The sender (from) is the customer; the
// recipient is the bot.
func parseContextEvent(a *activity.Activity, ns *notes) *InboundContext {
	c := &InboundContext{Source: Source{Dialect: DialectOmnichannel, ChannelID: a.ChannelID, ServiceURL: a.ServiceURL}}
	if a.Conversation != nil {
		c.Source.ConversationID = a.Conversation.ID
	}
	if a.Recipient != nil {
		c.Source.BotID, c.Source.BotName = a.Recipient.ID, a.Recipient.Name
	}
	if a.From != nil {
		c.Customer.ID, c.Customer.Name = a.From.ID, a.From.Name
	}
	_ = json.Unmarshal(a.ChannelDataField("sourceChannelId"), &c.SourceChannelID)
	ocData := a.ChannelDataField(OCDataKey)
	if a.Type == activity.TypeConversationUpdate {
		c.Event = activity.TypeConversationUpdate
		if len(a.Value) > 0 && !isNull(a.Value) {
			ns.add("value", NoteIgnored, "a voice context event's variables are in channelData[%q]; value not read", OCDataKey)
		}
		if ocData != nil && !isNull(ocData) {
			vars, err := ParseVariables(ocData)
			if err != nil {
				ns.add("channelData."+OCDataKey, NoteMalformed, "not a JSON object; no variables read")
			}
			c.Variables = vars
		}
	} else {
		c.Event = a.Name
		if ocData != nil {
			ns.add("channelData."+OCDataKey, NoteIgnored, "read only on voice (conversationUpdate) context events")
		}
		c.Variables = valueObject(a, ns)
	}
	c.Variables.liftCustomer(&c.Customer)
	c.Variables.liftLinks(&c.Links)
	c.Variables.fill(&c.LiveWorkItemID, namesWorkItem)
	return c
}

// EmitContextEvent writes Omnichannel's context event, as a contact centre sends it to a bot:
// for voice (Event conversationUpdate) a conversationUpdate whose channelData[
// "vnd.microsoft.msdyn.oc.data"] holds the variables; otherwise an event named Event
// (startConversation when empty) whose value holds them and whose text is their JSON, with
// tags "ChannelId-<channelId>,OmnichannelContextMessage,Hidden". The customer is the sender and
// the bot the recipient. channelData.sourceChannelId is written when the model has it.
func EmitContextEvent(c *InboundContext) (*activity.Activity, []Note, error) {
	vars := c.Variables.Clone()
	if vars == nil {
		vars = Variables{}
	}
	voice := c.Event == activity.TypeConversationUpdate
	if c.LiveWorkItemID != "" && !vars.has(namesWorkItem) {
		name := namesWorkItem[0]
		if voice {
			name = namesWorkItem[1]
		}
		vars[name] = String(c.LiveWorkItemID)
	}
	a := &activity.Activity{ChannelID: c.Source.ChannelID, ServiceURL: c.Source.ServiceURL}
	if c.Source.ConversationID != "" {
		a.Conversation = &activity.ConversationAccount{ID: c.Source.ConversationID}
	}
	a.From = recipientOf(Customer{ID: c.Customer.ID, Name: c.Customer.Name})
	if c.Source.BotID != "" || c.Source.BotName != "" {
		a.Recipient = &activity.ChannelAccount{ID: c.Source.BotID, Name: c.Source.BotName}
	}
	if voice {
		a.Type = activity.TypeConversationUpdate
		if err := a.SetChannelDataField(OCDataKey, vars); err != nil {
			return nil, nil, fmt.Errorf("handoff: context event: %w", err)
		}
	} else {
		a.Type, a.Name = activity.TypeEvent, c.Event
		if a.Name == "" {
			a.Name = EventStartConversation
		}
		if err := setValue(a, vars); err != nil {
			return nil, nil, err
		}
		a.Text = string(a.Value)
		labels := []string{"ChannelId-" + c.Source.ChannelID, LabelContextMessage, LabelHidden}
		if err := a.SetChannelDataField("tags", strings.Join(labels, ",")); err != nil {
			return nil, nil, fmt.Errorf("handoff: context event: %w", err)
		}
	}
	if c.SourceChannelID != "" {
		if err := a.SetChannelDataField("sourceChannelId", c.SourceChannelID); err != nil {
			return nil, nil, fmt.Errorf("handoff: context event: %w", err)
		}
	}
	return a, nil, nil
}
