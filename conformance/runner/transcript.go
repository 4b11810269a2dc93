package runner

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// Recording is a recorded conversation (.transcript) seen as turns: what the customer said and
// what the bot answered.
type Recording struct {
	User string // the customer's user id
	// Turns are the exchanges in order. The first has no User when the bot spoke first (a
	// greeting, answering the conversationUpdate that announced the user).
	Turns []Turn
	// Left lists what was left out, by activity type: trace (botbuilder sends it on the emulator
	// channel only), typing, and activities of no known party.
	Left map[string]int
}

// Turn is one exchange: the customer's activity and the bot's messages after it.
type Turn struct {
	User map[string]any   // as the customer posts it; nil for the greeting
	Bot  []map[string]any // as the bot sends them
}

// channelFields are what the channel assigns; a client does not send them and a bot's values
// are ignored, so they are taken out of recorded activities.
var channelFields = []string{"id", "timestamp", "serviceUrl", "channelId", "conversation", "recipient", "replyToId", "callerId"}

// ReadRecording reads a .transcript file (either form, rule T2101) into turns.
func ReadRecording(r io.Reader) (*Recording, error) {
	tr, err := activity.ReadTranscript(r)
	if err != nil {
		return nil, err
	}
	rec := &Recording{Left: map[string]int{}}
	for _, a := range tr.Activities {
		role := roleOf(a)
		switch {
		case a.Type == activity.TypeConversationUpdate:
			continue
		case a.Type == activity.TypeTrace || a.Type == activity.TypeTyping || role == "":
			rec.Left[a.Type]++
			continue
		}
		m, err := toMap(a)
		if err != nil {
			return nil, err
		}
		for _, k := range channelFields {
			delete(m, k)
		}
		if role == activity.RoleUser {
			if rec.User == "" && a.From != nil {
				rec.User = a.From.ID
			}
			rec.Turns = append(rec.Turns, Turn{User: m})
			continue
		}
		delete(m, "from")
		if len(rec.Turns) == 0 {
			rec.Turns = append(rec.Turns, Turn{})
		}
		last := &rec.Turns[len(rec.Turns)-1]
		last.Bot = append(last.Bot, m)
	}
	if rec.User == "" {
		return nil, fmt.Errorf("transcript: no activity of the user's")
	}
	return rec, nil
}

// roleOf tells the customer's activities from the bot's: from.role, else recipient.role.
func roleOf(a *activity.Activity) activity.Role {
	switch {
	case a.From != nil && (a.From.Role == activity.RoleUser || a.From.Role == activity.RoleBot):
		return a.From.Role
	case a.Recipient != nil && a.Recipient.Role == activity.RoleBot:
		return activity.RoleUser
	case a.Recipient != nil && a.Recipient.Role == activity.RoleUser:
		return activity.RoleBot
	}
	return ""
}

func toMap(a *activity.Activity) (map[string]any, error) {
	b, err := activity.Marshal(a)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(b)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// ConvertRecording writes a scenario that replays rec: the customer posts the recorded
// activities and the scripted bot answers each with the recorded messages. name and source go
// into its header.
func ConvertRecording(rec *Recording, name, source string) []byte {
	var in, sees, receives bytes.Buffer
	messages := 0
	for _, t := range rec.Turns {
		messages += len(t.Bot)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated from a recorded transcript by `bridge conformance --convert`; regenerate it rather\n")
	fmt.Fprintf(&b, "# than edit it. The customer posts the recorded activities (less the fields the channel assigns)\n")
	fmt.Fprintf(&b, "# and the scripted bot answers each with the bot's recorded messages.")
	if len(rec.Left) > 0 {
		fmt.Fprintf(&b, " Left out: %s (botbuilder\n# sends trace activities on the emulator channel only).", leftText(rec.Left))
	}
	fmt.Fprintf(&b, "\nname: %s\n", name)
	fmt.Fprintf(&b, "title: Recorded conversation %s: %d customer activities, %d bot messages\n", name, countUser(rec), messages)
	fmt.Fprintf(&b, "requirement: DL8\nrequirement: DL11\n")
	if source != "" {
		fmt.Fprintf(&b, "source: %s\n", source)
	}
	fmt.Fprintf(&b, "user: %s\nneeds: bot\n\n> customer start\n", rec.User)

	fmt.Fprintf(&sees, "< customer sees exactly\n")
	fmt.Fprintf(&receives, "< bot receives req=DL8\n")
	seen := map[string]int{} // await patterns already satisfied, so that a repeated message is awaited anew
	for i, t := range rec.Turns {
		label := fmt.Sprintf("u%d", i)
		if t.User == nil {
			fmt.Fprintf(&in, "\n> bot on %s\n", line(map[string]any{"type": "conversationUpdate", "membersAdded": []any{"{{more}}", map[string]any{"id": "{{user}}"}}}))
			fmt.Fprintf(&receives, "%s\n", line(map[string]any{"type": "conversationUpdate", "membersAdded": []any{"{{more}}", map[string]any{"id": "{{user}}"}}}))
		} else if len(t.Bot) > 0 {
			trigger := map[string]any{"type": t.User["type"]}
			for _, k := range []string{"text", "value", "name"} {
				if v, ok := t.User[k]; ok {
					trigger[k] = v
				}
			}
			fmt.Fprintf(&in, "\n> bot on %s\n", line(trigger))
		}
		for _, m := range t.Bot {
			fmt.Fprintf(&in, "%s\n", line(m))
		}
		if t.User != nil {
			fmt.Fprintf(&in, "> customer post as=%s\n%s\n", label, line(t.User))
			echo := copyMap(t.User)
			echo["id"] = "{{id:" + label + "}}"
			echo["from"] = map[string]any{"id": "{{user}}"}
			fmt.Fprintf(&sees, "%s\n", line(echo))
			got := copyMap(echo)
			got["conversation"] = map[string]any{"id": "{{conv}}"}
			got["serviceUrl"] = "{{url}}"
			got["channelId"] = "{{string}}"
			got["recipient"] = map[string]any{"id": "{{string}}"}
			fmt.Fprintf(&receives, "%s\n", line(got))
		}
		for _, m := range t.Bot {
			reply := copyMap(m)
			reply["id"] = "{{id}}"
			if t.User != nil {
				reply["replyToId"] = "{{id:" + label + "}}"
			}
			fmt.Fprintf(&sees, "%s\n", line(reply))
		}
		if len(t.Bot) > 0 {
			pattern := awaitPattern(t.Bot[len(t.Bot)-1])
			key := string(encode(pattern))
			for _, m := range t.Bot {
				if string(encode(awaitPattern(m))) == key {
					seen[key]++
				}
			}
			req := ""
			if t.User == nil {
				req = " req=DL4"
			}
			fmt.Fprintf(&in, "> customer await count=%d%s\n%s\n", seen[key], req, line(pattern))
		}
	}
	b.Write(in.Bytes())
	b.WriteString(Separator + "\n")
	b.Write(sees.Bytes())
	b.WriteString("\n")
	b.Write(receives.Bytes())
	return b.Bytes()
}

// awaitPattern is what identifies a bot message when the customer waits for it.
func awaitPattern(m map[string]any) map[string]any {
	p := map[string]any{"type": m["type"]}
	switch {
	case m["text"] != nil:
		p["text"] = m["text"]
	case m["attachments"] != nil:
		var types []any
		atts, _ := m["attachments"].([]any)
		for _, a := range atts {
			if am, ok := a.(map[string]any); ok {
				types = append(types, map[string]any{"contentType": am["contentType"]})
			}
		}
		p["attachments"] = types
	}
	return p
}

func countUser(rec *Recording) int {
	n := 0
	for _, t := range rec.Turns {
		if t.User != nil {
			n++
		}
	}
	return n
}

func leftText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// leadKeys come first in a generated activity, so that a reader sees what it is at once.
var leadKeys = []string{"type", "name", "id", "from", "text"}

// line is the one-line JSON of v: an object's leading keys first, then the others in order.
func line(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return string(encode(v))
	}
	var keys []string
	for _, k := range leadKeys {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range m {
		if !contains(leadKeys, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range append(keys, rest...) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(encode(k))
		b.WriteByte(':')
		b.Write(encode(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}
