package activity

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"sync/atomic"
	"unicode/utf8"
)

// The hand-written encoder below writes an Activity, and the accounts on every activity, exactly
// as encodeWithExtra does through encoding/json (the same members, order, escapes and errors),
// without reflection: every relayed activity is encoded once for the log, and reflection was
// the largest single cost of that (BENCHMARKS.md, "What was fixed, and where the time goes
// now"). TestFastEncoderMatchesRecorded, TestFastEncoderShapes and FuzzFastEncoder hold it to
// the reflection path, which stays the reference (encodeReflect) and the fallback for the rare
// shapes not written here.

// errRaw is the error for a raw member (channelData, value, properties, …) that is not valid
// JSON, which encoding/json refuses to write too.
var errRaw = errors.New("activity: a raw JSON member is not valid JSON")

// reflectOnly turns the hand-written encoder off, for the tests that compare it with the
// reflection path it replaces.
var reflectOnly atomic.Bool

// encodeReflect is the reference encoding of an Activity: encoding/json over its plain fields.
func encodeReflect(a *Activity) ([]byte, error) {
	type plain Activity
	return encodeWithExtra(plain(*a), a.Extra)
}

// encodeActivity returns a's JSON, as encodeReflect does.
func encodeActivity(a *Activity) ([]byte, error) {
	if reflectOnly.Load() || collides(a.Extra, activityKeys) {
		return encodeReflect(a) // a known member kept as it came ("" or null): the general path
	}
	b := make([]byte, 0, 256+len(a.Text)+len(a.ChannelData)+len(a.Value))
	b, err := appendActivity(b, a)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// appendActivity appends a's members in the struct's order, each only when encoding/json's
// omitempty/omitzero would write it.
func appendActivity(b []byte, a *Activity) ([]byte, error) {
	w := object{b: append(b, '{')}
	w.str("type", a.Type)
	w.str("id", a.ID)
	w.time("timestamp", a.Timestamp)
	w.time("localTimestamp", a.LocalTimestamp)
	w.str("localTimezone", a.LocalTimezone)
	w.str("serviceUrl", a.ServiceURL)
	w.str("channelId", a.ChannelID)
	if a.From != nil {
		w.account("from", a.From)
	}
	if a.Conversation != nil {
		w.key("conversation")
		w.b, w.err = appendConversationAccount(w.b, a.Conversation, true, w.err)
	}
	if a.Recipient != nil {
		w.account("recipient", a.Recipient)
	}
	w.str("textFormat", a.TextFormat)
	w.str("attachmentLayout", a.AttachmentLayout)
	w.accounts("membersAdded", a.MembersAdded)
	w.accounts("membersRemoved", a.MembersRemoved)
	marshalers(&w, "reactionsAdded", a.ReactionsAdded)
	marshalers(&w, "reactionsRemoved", a.ReactionsRemoved)
	w.str("topicName", a.TopicName)
	if a.HistoryDisclosed != nil {
		w.bool("historyDisclosed", *a.HistoryDisclosed)
	}
	w.str("locale", a.Locale)
	w.str("text", a.Text)
	w.str("speak", a.Speak)
	w.str("inputHint", a.InputHint)
	w.str("summary", a.Summary)
	if a.SuggestedActions != nil {
		w.marshaler("suggestedActions", a.SuggestedActions)
	}
	marshalers(&w, "attachments", a.Attachments)
	if a.Entities != nil {
		w.key("entities")
		w.array(len(a.Entities), func(i int) { w.raw(a.Entities[i]) })
	}
	w.rawMember("channelData", a.ChannelData)
	w.str("action", a.Action)
	w.str("replyToId", a.ReplyToID)
	w.str("label", a.Label)
	w.str("valueType", a.ValueType)
	w.rawMember("value", a.Value)
	w.str("name", a.Name)
	if a.RelatesTo != nil {
		w.marshaler("relatesTo", a.RelatesTo)
	}
	w.str("code", a.Code)
	w.time("expiration", a.Expiration)
	w.str("importance", a.Importance)
	w.str("deliveryMode", a.DeliveryMode)
	if a.ListenFor != nil {
		w.key("listenFor")
		w.array(len(a.ListenFor), func(i int) { w.b = appendString(w.b, a.ListenFor[i], false) })
	}
	marshalers(&w, "textHighlights", a.TextHighlights)
	if a.SemanticAction != nil {
		w.marshaler("semanticAction", a.SemanticAction)
	}
	w.str("callerId", a.CallerID)
	w.extra(a.Extra, false)
	return w.end()
}

// appendChannelAccount appends c as its MarshalJSON writes it; nested, an unknown member that
// is not valid JSON is an error, as the enclosing encoder's compaction makes it.
func appendChannelAccount(b []byte, c *ChannelAccount, nested bool, err error) ([]byte, error) {
	if err != nil {
		return b, err
	}
	if reflectOnly.Load() || collides(c.Extra, channelAccountKeys) {
		type plain ChannelAccount
		return appendGeneral(b, plain(*c), c.Extra, nested)
	}
	w := object{b: append(b, '{')}
	w.str("id", c.ID)
	w.str("name", c.Name)
	w.str("aadObjectId", c.AADObjectID)
	w.str("role", string(c.Role))
	w.rawMember("properties", c.Properties)
	w.extra(c.Extra, nested)
	return w.end()
}

// appendConversationAccount appends c as its MarshalJSON writes it (see appendChannelAccount).
func appendConversationAccount(b []byte, c *ConversationAccount, nested bool, err error) ([]byte, error) {
	if err != nil {
		return b, err
	}
	if reflectOnly.Load() || collides(c.Extra, conversationAccountKeys) {
		type plain ConversationAccount
		return appendGeneral(b, plain(*c), c.Extra, nested)
	}
	w := object{b: append(b, '{')}
	if c.IsGroup != nil {
		w.bool("isGroup", *c.IsGroup)
	}
	w.str("conversationType", c.ConversationType)
	w.str("id", c.ID)
	w.str("name", c.Name)
	w.str("aadObjectId", c.AADObjectID)
	w.str("role", string(c.Role))
	w.str("tenantId", c.TenantID)
	w.rawMember("properties", c.Properties)
	w.extra(c.Extra, nested)
	return w.end()
}

// appendGeneral appends encodeWithExtra's output, compacted when nested as encoding/json does
// with what a MarshalJSON method returns.
func appendGeneral(b []byte, v any, extra Extra, nested bool) ([]byte, error) {
	out, err := encodeWithExtra(v, extra)
	if err != nil {
		return b, err
	}
	if !nested {
		return append(b, out...), nil
	}
	return appendCompact(b, out)
}

// object writes the members of one JSON object; the first error stops it.
type object struct {
	b   []byte
	n   int // members written
	err error
}

func (w *object) key(name string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = append(w.b, '"')
	w.b = append(w.b, name...) // our own names: nothing to escape
	w.b = append(w.b, '"', ':')
}

func (w *object) str(name, v string) {
	if v != "" {
		w.key(name)
		w.b = appendString(w.b, v, false)
	}
}

func (w *object) bool(name string, v bool) {
	w.key(name)
	if v {
		w.b = append(w.b, "true"...)
	} else {
		w.b = append(w.b, "false"...)
	}
}

func (w *object) time(name string, t Time) {
	if t.IsZero() {
		return
	}
	w.key(name)
	if t.raw == nil {
		w.b = append(w.b, '"')
		w.b = t.t.UTC().AppendFormat(w.b, "2006-01-02T15:04:05.999999999Z07:00") // time.RFC3339Nano
		w.b = append(w.b, '"')
		return
	}
	w.raw(t.raw)
}

func (w *object) account(name string, c *ChannelAccount) {
	w.key(name)
	w.b, w.err = appendChannelAccount(w.b, c, true, w.err)
}

func (w *object) accounts(name string, cs []ChannelAccount) {
	if cs == nil {
		return
	}
	w.key(name)
	w.array(len(cs), func(i int) { w.b, w.err = appendChannelAccount(w.b, &cs[i], true, w.err) })
}

func (w *object) marshaler(name string, m json.Marshaler) {
	w.key(name)
	w.value(m)
}

// value appends what m's MarshalJSON returns, compacted, as encoding/json does.
func (w *object) value(m json.Marshaler) {
	if w.err != nil {
		return
	}
	out, err := m.MarshalJSON()
	if err != nil {
		w.err = err
		return
	}
	w.b, w.err = appendCompact(w.b, out)
}

func (w *object) array(n int, elem func(i int)) {
	w.b = append(w.b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		elem(i)
	}
	w.b = append(w.b, ']')
}

// rawMember writes a json.RawMessage field with omitempty: absent when empty.
func (w *object) rawMember(name string, raw json.RawMessage) {
	if len(raw) > 0 {
		w.key(name)
		w.raw(raw)
	}
}

// raw appends one raw value as encoding/json writes a json.RawMessage: nil is null, anything
// else is compacted and must be valid.
func (w *object) raw(raw []byte) {
	if w.err != nil {
		return
	}
	if raw == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b, w.err = appendCompact(w.b, raw)
}

// extra appends the unknown members in key order, as encodeWithExtra does (none of them spells
// a known member: collides sent those to the general path).
func (w *object) extra(extra Extra, nested bool) {
	if len(extra) == 0 || w.err != nil {
		return
	}
	var one [8]string
	keys := one[:0]
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if w.n > 0 {
			w.b = append(w.b, ',')
		}
		w.n++
		w.b = appendString(w.b, k, true) // json.Marshal's escaping, as encodeWithExtra's
		w.b = append(w.b, ':')
		b, err := appendCompact(w.b, extra[k])
		switch {
		case err == nil:
			w.b = b
		case nested: // the enclosing encoder's compaction refuses it
			w.err = err
			return
		default: // written as it is, as encodeWithExtra does
			w.b = append(w.b, extra[k]...)
		}
	}
}

func (w *object) end() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return append(w.b, '}'), nil
}

// marshalers writes a slice field with omitzero (absent when nil) whose elements encode
// themselves; a method cannot have type parameters, so it is a function.
func marshalers[T json.Marshaler](w *object, name string, s []T) {
	if s == nil {
		return
	}
	w.key(name)
	w.array(len(s), func(i int) { w.value(s[i]) })
}

// collides reports whether an unknown member spells a known one (kept because it came as "" or
// null), which encodeWithExtra resolves against what was written.
func collides(extra Extra, known map[string]struct{}) bool {
	for k := range extra {
		if _, ok := known[lower(k)]; ok {
			return true
		}
	}
	return false
}

// appendCompact appends the valid JSON value src without insignificant spaces, as json.Compact
// does; invalid JSON is an error and appends nothing.
func appendCompact(dst, src []byte) ([]byte, error) {
	if !json.Valid(src) {
		return dst, errRaw
	}
	start := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '"':
			i = skipString(src, i) - 1 // valid, so it ends
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...), nil
}

// AppendJSONString appends s as a JSON string exactly as json.Marshal writes it (HTML
// characters escaped), without json.Marshal's allocations.
func AppendJSONString(dst []byte, s string) []byte {
	return appendString(dst, s, true)
}

// appendString appends s as a JSON string exactly as encoding/json writes it: control characters,
// quote and backslash escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped, and <, >, &
// escaped when html is set (json.Marshal) but not otherwise (an Encoder with SetEscapeHTML(false)).
func appendString(dst []byte, s string, html bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// The known member names of the types written here, lower-cased as keysOf gives them.
var (
	activityKeys            = keysOf(reflect.TypeFor[Activity]())
	channelAccountKeys      = keysOf(reflect.TypeFor[ChannelAccount]())
	conversationAccountKeys = keysOf(reflect.TypeFor[ConversationAccount]())
)
