package handoff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// Members of a custom channel's channelData (D365 develop/bring-your-own-channel.md; DAS
// Adapter.Builder/ActivityExtension.cs).
const (
	memberChannelType         = "channeltype"
	memberConversationContext = "conversationcontext"
	memberCustomerContext     = "customercontext"
)

// customChannelFields finds the custom-channel members of channelData. Names are matched after
// trimming blanks and without regard to case — the documented sample spells one
// "conversationcontext " — with a note when the spelling differs from the documented one.
func customChannelFields(a *activity.Activity, ns *notes) map[string]json.RawMessage {
	if len(a.ChannelData) == 0 || a.ChannelData[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(a.ChannelData, &m) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for _, k := range sortedKeys(m) {
		for _, want := range []string{memberChannelType, memberConversationContext, memberCustomerContext} {
			if !strings.EqualFold(strings.TrimSpace(k), want) {
				continue
			}
			if _, dup := out[want]; dup {
				if ns != nil {
					ns.add("channelData."+k, NoteIgnored, "a second spelling of %s; the first (in byte order) is used", want)
				}
				continue
			}
			if k != want && ns != nil {
				ns.add("channelData."+k, NoteMalformed, "read as %s", want)
			}
			out[want] = m[k]
		}
	}
	return out
}

// isCustomChannel reports whether a carries a custom channel's conversationcontext or
// customercontext.
func isCustomChannel(a *activity.Activity) bool {
	if !containsFold(a.ChannelData, "context") { // most channelData: no decoding
		return false
	}
	f := customChannelFields(a, nil)
	return f[memberConversationContext] != nil || f[memberCustomerContext] != nil
}

// parseCustomChannel reads a message a custom channel posts into Omnichannel: text is the
// first thing the agent reads (the agent note), channelData.conversationcontext the workstream
// context variables, channelData.customercontext {email, phonenumber} the customer's contact
// details, and from the customer (id, and name as "First Last").
func parseCustomChannel(a *activity.Activity, ns *notes) *Escalation {
	f := customChannelFields(a, ns)
	e := &Escalation{Source: Source{Dialect: DialectOmnichannelCustom, ChannelID: a.ChannelID, ServiceURL: a.ServiceURL}, AgentNote: a.Text}
	if a.Conversation != nil {
		e.Source.ConversationID = a.Conversation.ID
	}
	if a.From != nil {
		e.Customer.ID, e.Customer.Name = a.From.ID, a.From.Name
	}
	if raw := f[memberChannelType]; raw != nil && !isNull(raw) && json.Unmarshal(raw, &e.Source.ChannelType) != nil {
		ns.add("channelData.channeltype", NoteMalformed, "not a string; not read")
	}
	if raw := f[memberConversationContext]; raw != nil && !isNull(raw) {
		vars, err := ParseVariables(raw)
		if err != nil {
			ns.add("channelData.conversationcontext", NoteMalformed, "not a JSON object; no variables read")
		}
		e.Context = vars
	}
	if raw := f[memberCustomerContext]; raw != nil && !isNull(raw) {
		var cc map[string]json.RawMessage
		if json.Unmarshal(raw, &cc) != nil {
			ns.add("channelData.customercontext", NoteMalformed, "not a JSON object; not read")
		}
		for _, k := range sortedKeys(cc) {
			var s string
			if json.Unmarshal(cc[k], &s) != nil {
				ns.add("channelData.customercontext."+k, NoteMalformed, "not a string; not read")
				continue
			}
			switch k {
			case "email":
				e.Customer.Email = s
			case "phonenumber":
				e.Customer.Phone = s
			default:
				ns.add("channelData.customercontext."+k, NoteIgnored, "customercontext documents only email and phonenumber")
			}
		}
	}
	e.lift()
	return e
}

// EmitCustomChannel writes an escalation as the first message of an Omnichannel custom channel
// conversation:
//
//   - from: the customer (id, name); a missing id is noted, as Omnichannel keys the
//     conversation by it;
//   - text: the agent note, or Summary(e) with a note;
//   - channelData.channeltype: channelType, or else e.Source.ChannelType;
//   - channelData.conversationcontext: e.Context plus CaseNumber, coerced by CoerceOmnichannel;
//   - channelData.customercontext: {email, phonenumber}.
//
// The message is held to OmnichannelMaxMessageBytes as EmitOmnichannel's is.
func EmitCustomChannel(e *Escalation, channelType string, opt CoerceOptions) (*activity.Activity, []Note, error) {
	var ns notes
	vars, cn := CoerceOmnichannel(e.complete(customChannelCompletions), opt)
	ns = append(ns, cn...)
	a := &activity.Activity{Type: activity.TypeMessage, ChannelID: e.Source.ChannelID, ServiceURL: e.Source.ServiceURL}
	if e.Source.ConversationID != "" {
		a.Conversation = &activity.ConversationAccount{ID: e.Source.ConversationID}
	}
	a.From = recipientOf(e.Customer)
	if e.Customer.ID == "" {
		ns.add("from.id", NoteMissing, "the customer's id keys the custom channel conversation; the caller must set it")
	}
	cd := struct {
		ChannelType         string    `json:"channeltype,omitempty"`
		ConversationContext Variables `json:"conversationcontext"`
		CustomerContext     *struct {
			Email       string `json:"email,omitempty"`
			PhoneNumber string `json:"phonenumber,omitempty"`
		} `json:"customercontext,omitempty"`
	}{ChannelType: channelType, ConversationContext: vars}
	if cd.ChannelType == "" {
		cd.ChannelType = e.Source.ChannelType
	}
	if e.Customer.Email != "" || e.Customer.Phone != "" {
		cd.CustomerContext = &struct {
			Email       string `json:"email,omitempty"`
			PhoneNumber string `json:"phonenumber,omitempty"`
		}{e.Customer.Email, e.Customer.Phone}
	}
	b, err := activity.Marshal(cd)
	if err != nil {
		return nil, nil, fmt.Errorf("handoff: custom channel: %w", err)
	}
	a.ChannelData = b
	text := e.AgentNote
	if text == "" {
		text = Summary(e)
		ns.add("text", NoteGenerated, "no agent note; the text is a summary of the escalation")
	}
	if err := fitText(a, text, &ns); err != nil {
		return nil, nil, fmt.Errorf("handoff: custom channel: %w", err)
	}
	return a, ns, nil
}

// containsFold reports whether b may contain the lower-case ASCII word w in any case: a quick
// test before decoding. With any escape in b it says yes, since an escaped name may spell w.
func containsFold(b []byte, w string) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return true // escapes: let the decoder decide
	}
	for i := 0; i+len(w) <= len(b); i++ {
		j := 0
		for j < len(w) && b[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
