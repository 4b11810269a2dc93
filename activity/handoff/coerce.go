package handoff

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Omnichannel limits (escalation.md §1: D365 manage-context-variables.md,
// configure-bot-best-practices.md). Characters are counted as .NET and Dataverse count them,
// in UTF-16 code units.
const (
	// OmnichannelMaxMessageBytes is the most an activity sent to Omnichannel may weigh,
	// metadata and tags included: 28 KB.
	OmnichannelMaxMessageBytes = 28 * 1024
	// OmnichannelMaxNameChars is the longest context variable name.
	OmnichannelMaxNameChars = 100
	// OmnichannelMaxValueChars is the longest context variable value.
	OmnichannelMaxValueChars = 4000
)

// CoerceOptions tune CoerceOmnichannel to a workstream.
type CoerceOptions struct {
	// NumberVariables names the workstream's context variables of type Number (case-exact).
	// Others are taken to be Text, or unknown.
	NumberVariables []string
}

// CoerceOmnichannel makes context variables fit Omnichannel, whose command context takes only
// String and Integer values (bot-escalate-end-conversation.md) for workstream variables of type
// Text or Number, names up to 100 characters and values up to 4,000, case-sensitive
// (manage-context-variables.md). The rules, applied per variable in name order:
//
//   - Names are kept exactly, case included. An empty name, or one over 100 characters, is
//     dropped: a shortened name would be another variable.
//   - String: kept.
//   - Integer: kept.
//   - Number: an integral value that fits in 64 bits (2.0, 1e3) is sent as an Integer; any
//     other (1.5, 1e400) as a String holding its literal exactly.
//   - Boolean: "true" or "false" as a String; 1 or 0 as an Integer for a Number variable
//     (escalation.md: "bool → "true"/"false" unless the var is Number").
//   - Array of strings, numbers and booleans: a String joining their texts with ", " (Copilot's
//     va_Topics ["Store hours","Returns"] becomes "Store hours, Returns"); an empty array
//     becomes "".
//   - Any other array, and an object: a String holding its compact JSON.
//   - Null: dropped, so that Omnichannel keeps the variable's current value.
//   - For a Number variable, a String from any of these rules that holds a decimal integer
//     ("42", or the array [42] joined) is sent as that Integer.
//   - A String over 4,000 characters is cut to 4,000 (never inside a surrogate pair).
//
// Every change adds a Note; nothing is dropped or changed without one. The result is a new set;
// vars is not modified.
func CoerceOmnichannel(vars Variables, opt CoerceOptions) (Variables, []Note) {
	var ns notes
	number := make(map[string]bool, len(opt.NumberVariables))
	for _, n := range opt.NumberVariables {
		number[n] = true
	}
	out := make(Variables, len(vars))
	for _, name := range vars.Names() {
		v := vars[name]
		path := "context." + name
		if name == "" {
			ns.add(path, NoteDropped, "a variable with an empty name cannot be set")
			continue
		}
		if n := utf16Len(name); n > OmnichannelMaxNameChars {
			ns.add(path, NoteDropped, "the name has %d characters; Omnichannel takes at most %d", n, OmnichannelMaxNameChars)
			continue
		}
		c, ok := coerceOne(path, v, number[name], &ns)
		if !ok {
			continue
		}
		if s, isStr := c.Str(); isStr && number[name] {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				ns.add(path, NoteCoerced, "string %q sent as integer %d for a Number variable", s, i)
				c = Integer(i)
			}
		}
		if s, isStr := c.Str(); isStr {
			if cut, short := truncateUTF16(s, OmnichannelMaxValueChars); short {
				ns.add(path, NoteTruncated, "the value has %d characters; cut to %d", utf16Len(s), OmnichannelMaxValueChars)
				c = String(cut)
			}
		}
		out[name] = c
	}
	return out, ns
}

func coerceOne(path string, v Value, isNumber bool, ns *notes) (Value, bool) {
	switch v.Kind() {
	case KindString, KindInteger:
		return v, true
	case KindNumber:
		lit, _ := v.Literal()
		if i, ok := exactInt(lit); ok {
			ns.add(path, NoteCoerced, "number %s sent as integer %d", lit, i)
			return Integer(i), true
		}
		ns.add(path, NoteCoerced, "number %s has no Integer form; sent as string %q", lit, lit)
		return String(lit), true
	case KindBoolean:
		b, _ := v.Bool()
		if isNumber {
			i := int64(0)
			if b {
				i = 1
			}
			ns.add(path, NoteCoerced, "boolean %t sent as integer %d for a Number variable", b, i)
			return Integer(i), true
		}
		ns.add(path, NoteCoerced, "boolean %t sent as string %q", b, strconv.FormatBool(b))
		return String(strconv.FormatBool(b)), true
	case KindJSON:
		raw := v.Raw()
		if s, ok := joinScalars(raw); ok {
			ns.add(path, NoteCoerced, "array sent as the string %q (elements joined with \", \")", clip(s, 80))
			return String(s), true
		}
		what := "object"
		if len(raw) > 0 && raw[0] == '[' {
			what = "array"
		}
		ns.add(path, NoteCoerced, "%s sent as a string holding its JSON", what)
		return String(string(raw)), true
	}
	ns.add(path, NoteDropped, "null has no String or Integer form; the variable is left out")
	return Value{}, false
}

// joinScalars joins an array of strings, numbers and booleans with ", ".
func joinScalars(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return "", false
	}
	var items []Value
	if json.Unmarshal(raw, &items) != nil {
		return "", false
	}
	parts := make([]string, len(items))
	for i, it := range items {
		switch it.Kind() {
		case KindString, KindInteger, KindNumber, KindBoolean:
			parts[i] = it.String()
		default:
			return "", false
		}
	}
	return strings.Join(parts, ", "), true
}

// utf16Len counts s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s { // ranging yields U+FFFD for invalid bytes: one unit
		n += utf16.RuneLen(r)
	}
	return n
}

// truncateUTF16 cuts s to at most max UTF-16 code units, at a rune boundary.
func truncateUTF16(s string, max int) (string, bool) {
	n := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if n+w > max {
			return s[:i], true
		}
		n += w
	}
	return s, false
}

// clip shortens s to at most n runes, adding "…" when it cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
