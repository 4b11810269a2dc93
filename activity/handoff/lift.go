package handoff

import (
	"encoding/json"
	"strings"
)

// Well-known variable names, case-exact, in the order they are tried. A typed field of the
// canonical model is read from the first of its names present in the context, and only when
// the dialect's own structure (text, from, recipient, …) did not give it. The variables stay
// in the context either way. Sources: escalation.md §1 (record identification Name, Email,
// Phone, CaseNumber; context-variables-for-bot.md msdyn_* and va_* names), §2 (Copilot va_*,
// MSCallerId from PVAS HandoffContext.cs).
var (
	namesCustomerName  = []string{"Name", "msdyn_CustomerName"}
	namesCustomerEmail = []string{"Email"}
	namesCustomerPhone = []string{"Phone", "CustomerPhoneNumber", "customerPhoneNumber", "MSCallerId"}
	namesLocale        = []string{"va_CustomerLocale", "va_Language"}
	namesAgentNote     = []string{"va_AgentMessage"}
	namesLastTopic     = []string{"va_LastTopic"}
	namesTopics        = []string{"va_Topics"}
	namesLastPhrases   = []string{"va_LastPhrases", "va_LastPhrase"}
	namesPhrases       = []string{"va_Phrases"}
	namesConversation  = []string{"va_ConversationId"}
	namesBotID         = []string{"va_BotId"}
	namesBotName       = []string{"va_BotName"}
	namesCaseNumber    = []string{"CaseNumber"}
	namesCaseID        = []string{"msdyn_CaseId"}
	namesCaseTitle     = []string{"msdyn_CaseTitle"}
	namesCustomerID    = []string{"msdyn_CustomerId"}
	namesCustomerType  = []string{"msdyn_CustomerType"}
	namesWorkItem      = []string{"msdyn_liveworkitemid", "msdyn_ocliveworkitemid"}

	// Lookups: JSON arrays of {RecordId, PrimaryDisplayValue} (context-variables-for-bot.md).
	lookupContact = "msdyn_contact_msdyn_ocliveworkitem_Customer"
	lookupAccount = "msdyn_account_msdyn_ocliveworkitem_Customer"
	lookupCase    = "msdyn_incident_msdyn_ocliveworkitem"
)

// Copilot's variable prefix and the other names that mark a Copilot handoff.
const copilotPrefix = "va_"

var copilotMarkers = []string{"MSCallerId"}

// Names of Copilot's close variable: the documented spelling and the one the voice note uses.
var namesClose = []string{"CloseOmnichannelConversation", "closeOmnichannelConversation"}

// text returns a scalar value as text; booleans, arrays, objects and null give nothing.
func text(v Value) (string, bool) {
	switch v.Kind() {
	case KindString, KindInteger, KindNumber:
		return v.String(), true
	}
	return "", false
}

// list returns an array of scalars, or a single non-empty string, as a list of texts.
func list(v Value) ([]string, bool) {
	switch v.Kind() {
	case KindString:
		if s, _ := v.Str(); s != "" {
			return []string{s}, true
		}
	case KindJSON:
		var items []Value
		if json.Unmarshal(v.Raw(), &items) != nil {
			return nil, false
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			if s, ok := text(it); ok {
				out = append(out, s)
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}

// lookupID returns the first RecordId of a lookup variable: an array of {RecordId, …}, or a
// string holding one.
func lookupID(v Value) (string, bool) {
	raw := []byte(v.Raw())
	if s, ok := v.Str(); ok {
		raw = []byte(s)
	}
	var recs []struct {
		RecordID string `json:"RecordId"`
	}
	if json.Unmarshal(raw, &recs) != nil || len(recs) == 0 || recs[0].RecordID == "" {
		return "", false
	}
	return recs[0].RecordID, true
}

// has reports whether any of the names is set in vars.
func (vs Variables) has(names []string) bool {
	for _, n := range names {
		if _, ok := vs[n]; ok {
			return true
		}
	}
	return false
}

// fill sets *dst from the first of names that reads as text, when *dst is empty.
func (vs Variables) fill(dst *string, names []string) {
	if *dst != "" {
		return
	}
	for _, n := range names {
		if v, ok := vs[n]; ok {
			if s, ok := text(v); ok && s != "" {
				*dst = s
				return
			}
		}
	}
}

// fillList sets *dst from the first of names that reads as a list, when *dst is empty.
func (vs Variables) fillList(dst *[]string, names []string) {
	if len(*dst) > 0 {
		return
	}
	for _, n := range names {
		if v, ok := vs[n]; ok {
			if l, ok := list(v); ok {
				*dst = l
				return
			}
		}
	}
}

func (vs Variables) fillLookup(dst *string, name string) {
	if *dst != "" {
		return
	}
	if v, ok := vs[name]; ok {
		if id, ok := lookupID(v); ok {
			*dst = id
		}
	}
}

// liftCustomer and liftLinks read the typed fields from well-known variables.
func (vs Variables) liftCustomer(c *Customer) {
	vs.fill(&c.Name, namesCustomerName)
	vs.fill(&c.Email, namesCustomerEmail)
	vs.fill(&c.Phone, namesCustomerPhone)
	vs.fill(&c.Locale, namesLocale)
}

func (vs Variables) liftLinks(l *Links) {
	vs.fill(&l.CaseNumber, namesCaseNumber)
	vs.fill(&l.CaseID, namesCaseID)
	vs.fillLookup(&l.CaseID, lookupCase)
	vs.fill(&l.CaseTitle, namesCaseTitle)
	vs.fillLookup(&l.ContactID, lookupContact)
	vs.fillLookup(&l.AccountID, lookupAccount)
	vs.fill(&l.CustomerID, namesCustomerID)
	vs.fill(&l.CustomerType, namesCustomerType)
}

// lift fills e's typed fields from its context, where the dialect's structure left them empty.
func (e *Escalation) lift() {
	vs := e.Context
	vs.fill(&e.AgentNote, namesAgentNote)
	vs.liftCustomer(&e.Customer)
	vs.fill(&e.Reason.LastTopic, namesLastTopic)
	vs.fillList(&e.Reason.Topics, namesTopics)
	vs.fillList(&e.Reason.LastPhrases, namesLastPhrases)
	vs.fillList(&e.Reason.Phrases, namesPhrases)
	vs.fill(&e.Source.ConversationID, namesConversation)
	vs.fill(&e.Source.BotID, namesBotID)
	vs.fill(&e.Source.BotName, namesBotName)
	vs.liftLinks(&e.Links)
}

// completion is one typed field a dialect writes as a variable when the context lacks it.
type completion struct {
	names []string // the field's names; none may be present for the field to be written
	value func(e *Escalation) (Value, string, bool)
}

func strField(name string, get func(e *Escalation) string) completion {
	return completion{names: []string{name}, value: func(e *Escalation) (Value, string, bool) {
		s := get(e)
		return String(s), name, s != ""
	}}
}

func listValue(l []string) Value {
	b, _ := json.Marshal(l)
	v, _ := ParseValue(b)
	return v
}

// Completions per dialect: the typed fields that dialect carries only as variables. Fields it
// carries in its structure (text, from, recipient, customercontext) are not repeated.
var (
	omnichannelCompletions = []completion{
		withAliases(strField("Name", func(e *Escalation) string { return e.Customer.Name }), namesCustomerName),
		withAliases(strField("Email", func(e *Escalation) string { return e.Customer.Email }), namesCustomerEmail),
		withAliases(strField("Phone", func(e *Escalation) string { return e.Customer.Phone }), namesCustomerPhone),
		withAliases(strField("CaseNumber", func(e *Escalation) string { return e.Links.CaseNumber }), namesCaseNumber),
	}
	customChannelCompletions = []completion{omnichannelCompletions[3]}
	botFrameworkCompletions  = omnichannelCompletions[1:]
	copilotCompletions       = []completion{
		withAliases(strField("va_AgentMessage", func(e *Escalation) string { return e.AgentNote }), namesAgentNote),
		withAliases(strField("va_LastTopic", func(e *Escalation) string { return e.Reason.LastTopic }), namesLastTopic),
		{names: namesTopics, value: func(e *Escalation) (Value, string, bool) {
			return listValue(e.Reason.Topics), "va_Topics", len(e.Reason.Topics) > 0
		}},
		// Copilot itself sends va_LastPhrase as a string (PVAS activities.json); the docs name
		// va_LastPhrases. One phrase is written the product's way, several the documented way.
		{names: namesLastPhrases, value: func(e *Escalation) (Value, string, bool) {
			if len(e.Reason.LastPhrases) == 1 {
				return String(e.Reason.LastPhrases[0]), "va_LastPhrase", true
			}
			return listValue(e.Reason.LastPhrases), "va_LastPhrases", len(e.Reason.LastPhrases) > 1
		}},
		{names: namesPhrases, value: func(e *Escalation) (Value, string, bool) {
			return listValue(e.Reason.Phrases), "va_Phrases", len(e.Reason.Phrases) > 0
		}},
	}
)

func withAliases(c completion, aliases []string) completion {
	c.names = aliases
	return c
}

// complete returns e's context with the dialect's completions added.
func (e *Escalation) complete(cs []completion) Variables {
	out := e.Context.Clone()
	if out == nil {
		out = Variables{}
	}
	for _, c := range cs {
		if e.Context.has(c.names) {
			continue
		}
		if v, name, ok := c.value(e); ok {
			out[name] = v
		}
	}
	return out
}

// hasCopilotVariables reports whether vars look like Copilot's: a va_ name or MSCallerId.
func hasCopilotVariables(vars Variables) bool {
	for k := range vars {
		if strings.HasPrefix(k, copilotPrefix) {
			return true
		}
	}
	return vars.has(copilotMarkers)
}

// closeRequested reports whether vars ask Omnichannel to close the conversation: the close
// variable is the boolean true or the string "true" (any case), and returns its name.
func closeRequested(vars Variables) (string, bool) {
	for _, n := range namesClose {
		v, ok := vars[n]
		if !ok {
			continue
		}
		if b, ok := v.Bool(); ok && b {
			return n, true
		}
		if s, ok := v.Str(); ok && strings.EqualFold(strings.TrimSpace(s), "true") {
			return n, true
		}
	}
	return "", false
}
