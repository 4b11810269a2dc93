package handoff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// TagsShape is how channelData.tags was written.
type TagsShape string

// Omnichannel writes channelData.tags in three shapes (escalation.md §1), and bots sometimes
// write the command as an object.
const (
	// TagsJSON is a string holding a JSON command, {"type":"Escalate","context":{…}}: what
	// bots send (OmnichannelBotClient, Health Bot's JSON.stringify). Emitters write this shape.
	TagsJSON TagsShape = "json"
	// TagsArray is an array of labels, ["ChannelId-lcw","FromCustomer"]: Live Chat customer
	// messages.
	TagsArray TagsShape = "array"
	// TagsComma is a comma-separated string of labels,
	// "ChannelId-lcw,OmnichannelContextMessage,Hidden": context events.
	TagsComma TagsShape = "comma"
	// TagsObject is the command as a JSON object rather than a string. No source documents it;
	// it is read (with a note) because the meaning is plain, and never written.
	TagsObject TagsShape = "object"
)

// Omnichannel command types (CommandType in bot-escalate-end-conversation.md).
const (
	CommandEscalate        = "Escalate"
	CommandEndConversation = "EndConversation"
)

// Labels Omnichannel puts in tags.
const (
	LabelContextMessage = "OmnichannelContextMessage"
	LabelHidden         = "Hidden"
	LabelFromCustomer   = "FromCustomer"
)

// Tags is a parsed channelData.tags: a command, or labels.
type Tags struct {
	Shape   TagsShape `json:"shape"`
	Command *Command  `json:"command,omitempty"`
	Labels  []string  `json:"labels,omitempty"`
}

// Has reports whether the tags carry the label, compared case-exactly.
func (t *Tags) Has(label string) bool {
	if t == nil {
		return false
	}
	for _, l := range t.Labels {
		if l == label {
			return true
		}
	}
	return false
}

// Command is an Omnichannel command: {"type":"Escalate"|"EndConversation","context":{…}}.
type Command struct {
	Type    string    `json:"type"`
	Context Variables `json:"context"`
}

// ParseTags reads channelData.tags in any of its shapes. A string is a JSON command when it
// starts with "{" (after blanks), an array of labels when it starts with "[" and reads as one,
// and comma-separated labels otherwise (each label trimmed of blanks, empty ones skipped). An
// array's members must be strings. A command's type is matched without regard to case and
// written back in the documented case; its context must be an object or null; members other
// than type and context are ignored with a note. A string that starts with "{" but is not a
// command, and a command of another type, are errors (*TagsError wrapping ErrMalformed or
// ErrUnknownCommand): they were meant as a command, and guessing would be worse.
func ParseTags(raw json.RawMessage) (*Tags, []Note, error) {
	var ns notes
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, tagsErr(string(raw), fmt.Errorf("%w: %w", ErrMalformed, err))
		}
		t, err := parseTagsString(s, &ns)
		return t, ns, err
	case '[':
		var labels []string
		if err := json.Unmarshal(raw, &labels); err != nil {
			return nil, nil, tagsErr(string(raw), fmt.Errorf("%w: an array of tags must hold strings", ErrMalformed))
		}
		return &Tags{Shape: TagsArray, Labels: nonNil(labels)}, nil, nil
	case '{':
		cmd, err := parseCommand(raw, &ns)
		if err != nil {
			return nil, nil, tagsErr(string(raw), err)
		}
		ns.add("channelData.tags", NoteMalformed, "the command is an object, not the documented JSON string; read as the command it spells")
		return &Tags{Shape: TagsObject, Command: cmd}, ns, nil
	}
	return nil, nil, tagsErr(string(raw), fmt.Errorf("%w: tags are neither a string nor an array", ErrMalformed))
}

func parseTagsString(s string, ns *notes) (*Tags, error) {
	trimmed := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(trimmed, "{"):
		cmd, err := parseCommand([]byte(trimmed), ns)
		if err != nil {
			return nil, tagsErr(s, err)
		}
		return &Tags{Shape: TagsJSON, Command: cmd}, nil
	case strings.HasPrefix(trimmed, "["):
		var labels []string
		if json.Unmarshal([]byte(trimmed), &labels) == nil {
			ns.add("channelData.tags", NoteMalformed, "the labels are a JSON array inside a string; read as an array")
			return &Tags{Shape: TagsArray, Labels: nonNil(labels)}, nil
		}
	}
	labels := []string{}
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	return &Tags{Shape: TagsComma, Labels: labels}, nil
}

func parseCommand(raw []byte, ns *notes) (*Command, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: the command is not a JSON object: %w", ErrMalformed, err)
	}
	var typ string
	if t, ok := m["type"]; !ok || json.Unmarshal(t, &typ) != nil {
		return nil, fmt.Errorf("%w: the command has no string member type", ErrMalformed)
	}
	cmd := &Command{}
	switch {
	case strings.EqualFold(typ, CommandEscalate):
		cmd.Type = CommandEscalate
	case strings.EqualFold(typ, CommandEndConversation):
		cmd.Type = CommandEndConversation
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownCommand, typ)
	}
	if typ != cmd.Type {
		ns.add("channelData.tags.type", NoteMalformed, "command type %q read as %q", typ, cmd.Type)
	}
	if c, ok := m["context"]; ok && !isNull(c) {
		vars, err := ParseVariables(c)
		if err != nil {
			return nil, fmt.Errorf("%w: the command's context: %w", ErrMalformed, err)
		}
		cmd.Context = vars
	}
	for _, k := range sortedKeys(m) {
		if k != "type" && k != "context" {
			ns.add("channelData.tags."+k, NoteIgnored, "member %q is not part of an Omnichannel command", k)
		}
	}
	return cmd, nil
}

// FormatCommand writes the command in the JSON-string shape, as OmnichannelBotClient does:
// {"type":…,"context":{…}} with the context's members in byte order of their names. The
// context is written as given; see CoerceOmnichannel for making it fit Omnichannel.
func FormatCommand(typ string, context Variables) (string, error) {
	if context == nil {
		context = Variables{}
	}
	b, err := activity.Marshal(Command{Type: typ, Context: context})
	if err != nil {
		return "", fmt.Errorf("handoff: command: %w", err)
	}
	return string(b), nil
}

func tagsErr(s string, err error) error {
	if len(s) > 200 {
		s = s[:200]
	}
	return &TagsError{Tags: s, Err: err}
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}
