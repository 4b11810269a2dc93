package activity

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Extra holds the JSON members of an object that its Go type does not model, verbatim.
// Receivers must accept unknown fields (Activity rule A2005) and a relay must not drop them,
// so every schema type here carries an Extra that decoding fills and encoding writes back.
type Extra map[string]json.RawMessage

// knownKeys caches, per struct type, the lower-cased JSON names of its fields. encoding/json
// matches member names case-insensitively, so an unknown member is one whose lower-cased name
// is not among these.
var knownKeys sync.Map // reflect.Type -> map[string]struct{}

func keysOf(t reflect.Type) map[string]struct{} {
	if k, ok := knownKeys.Load(t); ok {
		return k.(map[string]struct{})
	}
	keys := make(map[string]struct{}, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		keys[strings.ToLower(name)] = struct{}{}
	}
	knownKeys.Store(t, keys)
	return keys
}

// decodeWithExtra decodes the JSON object data into v (a pointer to a struct without custom
// unmarshalling) and returns the members that v's type does not know.
func decodeWithExtra(data []byte, v any) (Extra, error) {
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	known := keysOf(reflect.TypeOf(v).Elem())
	var extra Extra
	err := eachMember(data, func(k string, raw []byte) {
		if _, ok := known[lower(k)]; ok && !isBlank(raw) {
			return
		}
		if extra == nil {
			extra = make(Extra, 2)
		}
		extra[k] = append(json.RawMessage(nil), raw...)
	})
	return extra, err
}

// lower returns s in lower case, without allocating when it is already.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// eachMember calls fn with the name and the raw value of each member of the JSON object data,
// in order, without decoding the values: the second pass over an activity that finds its
// unknown members. data has been decoded successfully already; anything else is an error.
func eachMember(data []byte, fn func(name string, raw []byte)) error {
	bad := errors.New("activity: not a JSON object")
	i := skipSpace(data, 0)
	if bytes.HasPrefix(data[i:], []byte("null")) && skipSpace(data, i+4) == len(data) {
		return nil // no members, as encoding/json decodes null into a map
	}
	if i >= len(data) || data[i] != '{' {
		return bad
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil
	}
	for i < len(data) {
		if data[i] != '"' {
			return bad
		}
		end := skipString(data, i)
		if end < 0 {
			return bad
		}
		key := data[i+1 : end-1]
		var name string
		if bytes.IndexByte(key, '\\') >= 0 || !isASCII(key) { // as encoding/json decodes names
			if err := json.Unmarshal(data[i:end], &name); err != nil {
				return err
			}
		} else {
			name = string(key)
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return bad
		}
		start := skipSpace(data, i+1)
		end = skipValue(data, start)
		if end < 0 {
			return bad
		}
		fn(name, data[start:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return bad
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return nil
		default:
			return bad
		}
	}
	return bad
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] (a quote), or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value that starts at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// encodeWithExtra encodes v (a struct without custom marshalling) and appends the members of
// extra, in key order so that the output is deterministic. HTML characters are not escaped.
func encodeWithExtra(v any, extra Extra) ([]byte, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			encodeBuffers.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := bytes.Clone(bytes.TrimRight(buf.Bytes(), "\n"))
	if len(extra) == 0 {
		return b, nil
	}
	// A known member that came as "" or null decodes to a zero value that encoding omits; it was
	// kept in extra so that it is written back as it came, unless the field is written anyway
	// (set since, or non-empty). Names compare without case, as encoding/json matches them, so
	// that "Value": null or "ID": "" is never written next to the field it spells.
	var emitted map[string]bool
	known := keysOf(reflect.TypeOf(v))
	keys := make([]string, 0, len(extra))
	for k := range extra {
		lk := strings.ToLower(k)
		if _, ok := known[lk]; ok {
			if emitted == nil {
				var members map[string]json.RawMessage
				if err := json.Unmarshal(b, &members); err != nil {
					return nil, err
				}
				emitted = make(map[string]bool, len(members))
				for m := range members {
					emitted[strings.ToLower(m)] = true
				}
			}
			if emitted[lk] {
				continue
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return b, nil
	}
	sort.Strings(keys)
	out := make([]byte, 0, len(b)+64*len(keys))
	out = append(out, b[:len(b)-1]...) // drop the closing brace
	first := len(b) == 2               // "{}"
	for _, k := range keys {
		if !first {
			out = append(out, ',')
		}
		first = false
		name, _ := json.Marshal(k)
		out = append(out, name...)
		out = append(out, ':')
		// compact, as encoding/json writes raw values (and so the output is compact throughout)
		if c := bytes.NewBuffer(out); json.Compact(c, extra[k]) == nil {
			out = c.Bytes()
		} else {
			out = append(out, extra[k]...)
		}
	}
	return append(out, '}'), nil
}

var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// MarshalActivity is Marshal for an activity. It takes the type, not an interface, so that a
// caller's copy of an activity can stay on its stack.
func MarshalActivity(a *Activity) ([]byte, error) {
	return encodeActivity(a)
}

// Marshal encodes v as JSON without escaping HTML characters, as Bot Framework services do.
func Marshal(v any) ([]byte, error) {
	if a, ok := v.(*Activity); ok && a != nil {
		return encodeActivity(a) // already compact: no second pass through encoding/json
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// isBlank reports whether raw is "" or null: values that decode to a Go zero value.
func isBlank(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	return s == `""` || s == "null"
}
