package dynamics

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// Limits of conversation/create (contact-centers-t2.md §1, CC api/api-conversation-create.md).
const (
	// MaxCustomerFieldChars bounds each customercontext field.
	MaxCustomerFieldChars = 200
	// MaxContextEntries bounds conversationcontext (30010 beyond).
	MaxContextEntries = 100
	// MaxContextValueChars bounds a text context value, as workstream variables are bounded
	// (escalation.md §1: 4,000 characters).
	MaxContextValueChars = 4000
	// MaxStartMessageBytes bounds startmessage.message: 27 KB.
	MaxStartMessageBytes = 27 * 1024
	// maxNoteChars bounds the summary / agent note at the head of startmessage.
	maxNoteChars = 4000
)

// Context variables the bridge adds (they win over a bot's variable of the same name).
const (
	VarSessionID = "sessionId" // the bridge's conversation id: the trace key back to the bridge
	VarChannel   = "channel"   // always "web": the customer is in the bridge's web widget
	VarSummary   = "summary"   // the bot's note for the rep, when it gave one (the bot's own variable wins)
)

// hiddenVars are Copilot Studio bookkeeping variables (escalation.md §2) that route but mean
// nothing to a rep: sent with isDisplayable false.
var hiddenVars = map[string]bool{
	"va_Scope": true, "va_BotId": true, "va_BotName": true, "va_ConversationId": true, "va_Language": true, "va_Phrases": true,
}

// createRequest is the body of POST …/conversation/create.
type createRequest struct {
	CustomerContext       *customerContext        `json:"customercontext,omitempty"`
	ConversationContext   map[string]contextEntry `json:"conversationcontext"`
	ConversationRequestID string                  `json:"conversationrequestid"`
	StartMessage          *startMessage           `json:"startmessage,omitempty"`
	SkipDeflectionBot     bool                    `json:"skipdeflectionbot"`
}

type customerContext struct {
	CustomerID    string `json:"customerid,omitempty"`
	PreferredName string `json:"preferredname,omitempty"`
	Email         string `json:"email,omitempty"`
	PhoneNumber   string `json:"phonenumber,omitempty"`
}

type contextEntry struct {
	IsDisplayable bool            `json:"isDisplayable"`
	Value         json.RawMessage `json:"value"`
}

type startMessage struct {
	Message     string `json:"message"`
	DisplayName string `json:"displayname"`
}

// createResponse is its answer.
type createResponse struct {
	ConversationID string   `json:"conversationId"`
	IsNew          bool     `json:"isNew"`
	MessageID      digitsID `json:"messageId"`
}

// digitsID is an id the API documents as a string of digits; a number is taken as well.
type digitsID string

func (s *digitsID) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		*s = digitsID(x)
	case float64:
		*s = digitsID(strconv.FormatFloat(x, 'f', -1, 64))
	}
	return nil
}

// requestID derives conversationrequestid from the bridge's conversation and this escalation
// (the conversation's stored version while it escalates, which the Hub bumps once per
// escalation): the same on every attempt of one escalation, another for the next escalation.
// It is a GUID built from a SHA-256 (version nibble 8, "custom", RFC 9562 §5.8).
func requestID(c *bridge.Conversation) string {
	h := sha256.Sum256(fmt.Appendf(nil, "bfbridge/dynamics/%s/%d", c.ID, c.Version))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// buildCreate writes the create request for c escalated with e.
func buildCreate(c *bridge.Conversation, e *handoff.Escalation, displayName string) createRequest {
	return createRequest{
		CustomerContext:       customerOf(c),
		ConversationContext:   contextOf(c, e),
		ConversationRequestID: requestID(c),
		StartMessage:          &startMessage{Message: StartMessage(e, botIDOf(c)), DisplayName: displayName},
		SkipDeflectionBot:     true,
	}
}

func botIDOf(c *bridge.Conversation) string { return c.Bot.Bot.ID }

// contextOf is conversationcontext: every routing variable of the conversation (the bot's
// escalation merged in), typed, then sessionId, channel and summary.
//
// Types: a string stays a string (cut to 4,000 characters), an integer, a number and a boolean
// keep their JSON type, an array of scalars becomes the string of its items joined with ", ",
// any other array or object the string of its compact JSON, and null is left out (nothing to
// say). Displayable: every variable but the Copilot bookkeeping ones (hiddenVars); sessionId,
// channel and summary are displayable. Past 100 entries (the API's limit) the bot's variables
// are kept in name order and the rest dropped.
func contextOf(c *bridge.Conversation, e *handoff.Escalation) map[string]contextEntry {
	vars := c.Context.Clone()
	if vars == nil {
		vars = handoff.Variables{}
	}
	maps.Copy(vars, e.Context)
	out := map[string]contextEntry{}
	own := map[string]json.RawMessage{VarSessionID: jsonString(c.ID), VarChannel: jsonString("web")}
	if note := strings.TrimSpace(e.AgentNote); note != "" {
		if _, has := vars[VarSummary]; !has {
			own[VarSummary] = jsonString(clipChars(note, MaxContextValueChars))
		}
	}
	room := MaxContextEntries - len(own)
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if _, reserved := own[name]; reserved || name == "" || len(out) >= room {
			continue
		}
		if raw, ok := typedValue(vars[name]); ok {
			out[name] = contextEntry{IsDisplayable: !hiddenVars[name], Value: raw}
		}
	}
	for name, raw := range own {
		out[name] = contextEntry{IsDisplayable: true, Value: raw}
	}
	return out
}

// typedValue is a context value as the API takes it (see contextOf).
func typedValue(v handoff.Value) (json.RawMessage, bool) {
	switch v.Kind() {
	case handoff.KindNull:
		return nil, false
	case handoff.KindString:
		s, _ := v.Str()
		return jsonString(clipChars(s, MaxContextValueChars)), true
	case handoff.KindInteger, handoff.KindNumber, handoff.KindBoolean:
		return v.Raw(), true
	}
	raw := v.Raw()
	var items []any
	if json.Unmarshal(raw, &items) == nil && allScalars(items) {
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = fmt.Sprint(it)
		}
		return jsonString(clipChars(strings.Join(parts, ", "), MaxContextValueChars)), true
	}
	return jsonString(clipChars(string(raw), MaxContextValueChars)), true
}

func allScalars(items []any) bool {
	for _, it := range items {
		switch it.(type) {
		case string, float64, bool:
		default:
			return false
		}
	}
	return true
}

// customerOf is customercontext: what the site's server vouched for (Leg.Identity), for contact
// linking by email or phone, the name as preferredname (what the rep sees). An anonymous visitor
// has none: no customercontext at all. customerid is not sent: the API answers a create for an
// active customerid with that customer's existing conversation, so two bridge conversations of
// one customer (two tabs) would share one Dynamics chat and the rep's replies could reach only
// one of them.
func customerOf(c *bridge.Conversation) *customerContext {
	id := c.Customer.Identity
	if id == nil || (id.Name == "" && id.Email == "" && id.Phone == "") {
		return nil
	}
	name := id.Name
	if name == "" {
		name = c.Customer.User.Name
	}
	return &customerContext{
		PreferredName: clipChars(name, MaxCustomerFieldChars),
		Email:         clipChars(id.Email, MaxCustomerFieldChars),
		PhoneNumber:   clipChars(id.Phone, MaxCustomerFieldChars),
	}
}

// StartMessage writes the rep-only opening message: the bot's note for the rep (or, without
// one, "The bot requested a human agent."), the reason, last topic and last phrases when the
// dialect gives them, then the transcript's messages, one line each, "[15:04:05] Customer: …" /
// "Bot: …" / "Agent: …", whitespace folded.
//
// The 27 KB rule: the head (note and reason) is cut to 4,000 characters; the transcript keeps
// its most recent lines that fit in what is left of 27 KB (counted in UTF-8 bytes of the JSON
// string, escapes included, so the field fits however the API counts), and a line
// "[n earlier lines left out]" takes the place of the ones dropped. A single line longer than
// the room left is cut.
func StartMessage(e *handoff.Escalation, botID string) string {
	head := headOf(e)
	lines := transcriptLines(e, botID)
	if len(lines) == 0 {
		return head
	}
	budget := MaxStartMessageBytes - jsonLen(head) - jsonLen("\n\nTranscript:\n") - 64 // room for the marker line
	first := len(lines)
	for first > 0 {
		n := jsonLen(lines[first-1]) // the escaped line without its quotes (-2), plus an escaped "\n" (+2)
		if n > budget {
			break
		}
		budget -= n
		first--
	}
	kept := lines[first:]
	if len(kept) == 0 { // the last line alone is too long: cut it
		kept = []string{cutToJSONBytes(lines[len(lines)-1], budget)}
		first = len(lines) - 1
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteString("\n\nTranscript:\n")
	if first > 0 {
		fmt.Fprintf(&b, "[%d earlier lines left out]\n", first)
	}
	b.WriteString(strings.Join(kept, "\n"))
	return b.String()
}

// headOf is the note, reason, last topic and phrases, cut to maxNoteChars.
func headOf(e *handoff.Escalation) string {
	var head []string
	if note := strings.TrimSpace(e.AgentNote); note != "" {
		head = append(head, note)
	} else {
		head = append(head, "The bot requested a human agent.")
	}
	if e.Reason.Text != "" {
		head = append(head, "Reason: "+e.Reason.Text)
	}
	if e.Reason.LastTopic != "" {
		head = append(head, "Last topic: "+e.Reason.LastTopic)
	}
	if len(e.Reason.LastPhrases) > 0 {
		head = append(head, "Last phrases: "+strings.Join(e.Reason.LastPhrases, " | "))
	}
	return clipChars(strings.Join(head, "\n"), maxNoteChars)
}

// transcriptLines are the transcript's messages with text, oldest first.
func transcriptLines(e *handoff.Escalation, botID string) []string {
	var lines []string
	for _, a := range e.Transcript.Activities {
		if a.Type != activity.TypeMessage || strings.TrimSpace(a.Text) == "" {
			continue
		}
		prefix := ""
		if !a.Timestamp.IsZero() {
			prefix = "[" + a.Timestamp.Time().UTC().Format(time.TimeOnly) + "] "
		}
		lines = append(lines, prefix+speaker(a, botID)+": "+strings.Join(strings.Fields(a.Text), " "))
	}
	return lines
}

func speaker(a *activity.Activity, botID string) string {
	switch {
	case a.From == nil:
		return "Unknown"
	case a.From.Role == activity.RoleUser:
		return "Customer"
	case a.From.Role == activity.RoleBot || (botID != "" && a.From.ID == botID):
		return "Bot"
	case a.From.Role == "agent":
		return "Agent"
	}
	return "Customer"
}

// jsonString is s as a JSON string.
func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// jsonLen is the length of s as a JSON string, quotes included.
func jsonLen(s string) int { return len(jsonString(s)) }

// cutToJSONBytes cuts s so that its JSON string (without quotes) is at most n bytes.
func cutToJSONBytes(s string, n int) string {
	rs := []rune(s)
	lo, hi := 0, len(rs)
	for lo < hi { // the longest prefix that fits
		mid := (lo + hi + 1) / 2
		if jsonLen(string(rs[:mid]))-2 <= n {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return string(rs[:lo])
}

// clipChars cuts s to at most n characters as .NET counts them (UTF-16 code units), never
// inside a surrogate pair.
func clipChars(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i, r := range s {
		w := 1
		if utf16.IsSurrogate(r) || r > 0xFFFF {
			w = 2
		}
		if count+w > n {
			return s[:i]
		}
		count += w
	}
	return s
}
