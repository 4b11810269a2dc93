package salesforce

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// Routing attribute names the channel sets besides the bot's variables.
const (
	// AttrConsumerType says whether the customer was verified (Config.ConsumerType…).
	AttrConsumerType = "Chat_Consumer_Type"
	// AttrSessionID is the bridge's conversation id: the trace key back to the bridge.
	AttrSessionID = "Session_Id"
	// AttrSummary is the bot's summary for the rep (its note, else its reason), at most
	// maxAttrChars characters.
	AttrSummary = "Summary"
)

// maxAttrChars bounds a string routing attribute: a hidden pre-chat field maps to a Text
// field, 255 characters in Salesforce (an assumption: MIAW documents no limit).
const maxAttrChars = 255

// subject reports whether the site's server vouched for the customer (bridge.Identity) in a
// way that names them, and the stable sub of their customerIdentityToken: the email (lower
// case), else the phone (digits and a leading +). Not the Direct Line user id: when the site
// did not bind one into the token, the token's holder may choose it, and so could speak as
// another end user. An identity with a name only is treated as anonymous.
func subject(c *bridge.Conversation) (string, bool) {
	id := c.Customer.Identity
	switch {
	case id == nil:
		return "", false
	case id.Email != "":
		return strings.ToLower(id.Email), true
	case id.Phone != "":
		return "tel:" + strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' || r == '+' {
				return r
			}
			return -1
		}, id.Phone), true
	}
	return "", false
}

// routingAttributes are the static attributes, under the bot's variables (each typed as MIAW
// takes JSON: strings, numbers, booleans; a list of plain values joined with ", "; objects
// left out), under the channel's own: Session_Id, Chat_Consumer_Type and Summary.
func (ch *Channel) routingAttributes(c *bridge.Conversation, e *handoff.Escalation, verified bool) map[string]any {
	out := maps.Clone(ch.cfg.RoutingAttributes)
	if out == nil {
		out = map[string]any{}
	}
	for _, vars := range []handoff.Variables{c.Context, e.Context} {
		for k, v := range vars {
			if x, ok := plain(v); ok {
				out[k] = x
			}
		}
	}
	out[AttrSessionID] = c.ID
	out[AttrConsumerType] = ch.cfg.ConsumerTypeAnonymous
	if verified {
		out[AttrConsumerType] = ch.cfg.ConsumerTypeAuthenticated
	}
	if s := summary(e); s != "" {
		out[AttrSummary] = cut(s, maxAttrChars)
	}
	return out
}

// plain converts a context variable to a routing attribute value.
func plain(v handoff.Value) (any, bool) {
	switch v.Kind() {
	case handoff.KindString:
		s, _ := v.Str()
		return s, true
	case handoff.KindInteger:
		i, _ := v.Int()
		return i, true
	case handoff.KindNumber:
		f, _ := v.Float()
		return f, true
	case handoff.KindBoolean:
		b, _ := v.Bool()
		return b, true
	case handoff.KindJSON:
		var items []any
		if json.Unmarshal(v.Raw(), &items) != nil {
			return nil, false
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			switch it.(type) {
			case string, float64, bool:
				parts = append(parts, fmt.Sprint(it))
			default:
				return nil, false
			}
		}
		return strings.Join(parts, ", "), true
	}
	return nil, false
}

// summary is the bot's summary: its note for the agent, else its reason.
func summary(e *handoff.Escalation) string {
	switch {
	case e.AgentNote != "":
		return e.AgentNote
	case e.Reason.Text != "":
		return e.Reason.Text
	case e.Reason.LastTopic != "":
		return "Topic: " + e.Reason.LastTopic
	}
	return ""
}

// cut returns s cut to at most n runes.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// maxMessageChars bounds one transcript message (MIAW documents no limit; a choice).
const maxMessageChars = 4000

// transcriptMessages is the bot conversation as the rep's first messages (MIAW has no
// transcript primitive; escalation.md §5 lists this as one option): a heading with the
// summary, then one line per message, "Customer: …" or "Bot: …", in order. Past maxChars the
// oldest lines are left out, and a line says how many. Lines are packed into messages of at
// most maxMessageChars; a longer line is cut.
func transcriptMessages(c *bridge.Conversation, e *handoff.Escalation, maxChars int) []string {
	lines := transcriptLines(c, e.Transcript.Activities)
	total, keep := 0, len(lines)
	for keep > 0 && total+len(lines[keep-1])+1 <= maxChars {
		total += len(lines[keep-1]) + 1
		keep--
	}
	head := []string{"Conversation with the bot before the handoff (bridge session " + c.ID + ")"}
	if s := summary(e); s != "" {
		head = append(head, "Summary: "+s)
	}
	if keep > 0 {
		head = append(head, fmt.Sprintf("(%d earlier lines left out)", keep))
	}
	if len(lines) == 0 {
		head = append(head, "(no messages)")
	}
	return pack(append(head, lines[keep:]...), maxMessageChars)
}

// transcriptLines renders the customer-visible messages of a transcript.
func transcriptLines(c *bridge.Conversation, acts []*activity.Activity) []string {
	var out []string
	for _, a := range acts {
		if a == nil || a.Type != activity.TypeMessage {
			continue
		}
		text := strings.TrimSpace(a.Text)
		for _, at := range a.Attachments {
			if at.Name != "" || at.ContentURL != "" {
				text = strings.TrimSpace(text + " [file: " + at.Name + "]")
			}
		}
		if text == "" {
			continue
		}
		who := "Bot"
		if a.From != nil && (a.From.Role == "user" || (a.From.ID != "" && a.From.ID == c.Customer.User.ID)) {
			who = "Customer"
		}
		out = append(out, who+": "+strings.ReplaceAll(text, "\n", " "))
	}
	return out
}

// pack joins lines into texts of at most n runes.
func pack(lines []string, n int) []string {
	var out []string
	var b strings.Builder
	size := 0
	for _, l := range lines {
		l = cut(l, n)
		ln := len([]rune(l))
		if size > 0 && size+1+ln > n {
			out = append(out, b.String())
			b.Reset()
			size = 0
		}
		if size > 0 {
			b.WriteByte('\n')
			size++
		}
		b.WriteString(l)
		size += ln
	}
	if size > 0 {
		out = append(out, b.String())
	}
	return out
}
