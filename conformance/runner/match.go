package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Matching semantics (documented for scenario authors in conformance/scenarios/README.md):
//
//   - An expected object matches an actual object when every expected member matches the
//     actual member of the same name; the actual object may have more members (subset match).
//   - An expected array matches an actual array of the same length, element by element. With a
//     "{{more}}" element anywhere in it, the other expected elements must appear in the actual
//     array in that order, with anything else around them.
//   - Scalars match when equal; numbers compare by value.
//   - A string that is exactly "{{…}}" is a placeholder (see placeholder); any other string has
//     its {{conv}} and {{user}} references replaced before it is compared.

// mismatch is one difference between an expected and an actual value. Req, when set, is the
// requirement that the difference breaks whatever block it is found in (A2043 for a timestamp
// that is not UTC, DL7 for an id that is not {conv}|%07d).
type mismatch struct {
	Path string
	Msg  string
	Req  string
}

func (m mismatch) String() string {
	if m.Path == "" {
		return m.Msg
	}
	return m.Path + ": " + m.Msg
}

// matcher holds what placeholders compare against: the scenario's variables and the values
// bound so far by named placeholders ({{id:p1}}).
type matcher struct {
	vars  map[string]string
	bound map[string]any
}

func newMatcher(vars map[string]string) *matcher {
	return &matcher{vars: vars, bound: map[string]any{}}
}

// try matches want against got and keeps the bindings only when they match.
func (m *matcher) try(path string, want, got any) []mismatch {
	saved := make(map[string]any, len(m.bound))
	for k, v := range m.bound {
		saved[k] = v
	}
	var out []mismatch
	m.value(path, want, got, true, &out)
	if len(out) > 0 {
		m.bound = saved
	}
	return out
}

// placeholder is a parsed "{{kind:name not literal}}": a kind, an optional binding name, and
// an optional literal the value must not be. "{{not literal}}" alone allows an absent value.
type placeholder struct {
	kind string
	name string // binding name; for "includes", the list
	not  string
}

var placeholderKinds = map[string]bool{
	"any": true, "absent": true, "string": true, "number": true, "bool": true, "object": true,
	"array": true, "id": true, "seqid": true, "timestamp": true, "url": true, "wsurl": true,
	"jwt": true, "conv": true, "user": true, "more": true, "not": true, "includes": true,
}

// parsePlaceholder reports whether s is a whole-string placeholder.
func parsePlaceholder(s string) (placeholder, bool) {
	if !strings.HasPrefix(s, "{{") || !strings.HasSuffix(s, "}}") || len(s) < 5 {
		return placeholder{}, false
	}
	inner := strings.TrimSpace(s[2 : len(s)-2])
	if rest, ok := strings.CutPrefix(inner, "not "); ok {
		return placeholder{kind: "not", not: strings.TrimSpace(rest)}, true
	}
	if rest, ok := strings.CutPrefix(inner, "includes "); ok {
		return placeholder{kind: "includes", name: strings.TrimSpace(rest)}, true
	}
	head, not, hasNot := strings.Cut(inner, " not ")
	kind, name, _ := strings.Cut(strings.TrimSpace(head), ":")
	if !placeholderKinds[kind] || kind == "not" || kind == "includes" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, " ") {
		return placeholder{}, false
	}
	p := placeholder{kind: kind, name: name}
	if hasNot {
		p.not = strings.TrimSpace(not)
	}
	return p, true
}

// interpolate replaces {{conv}}, {{user}} and the other scenario variables inside s.
func interpolate(s string, vars map[string]string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// interpolate replaces the scenario's variables and the string values bound so far in s.
func (m *matcher) interpolate(s string) string {
	s = interpolate(s, m.vars)
	for k, v := range m.bound {
		if str, ok := v.(string); ok {
			s = strings.ReplaceAll(s, "{{"+k+"}}", str)
		}
	}
	return s
}

func (m *matcher) value(path string, want, got any, present bool, out *[]mismatch) {
	if s, ok := want.(string); ok {
		if p, ok := parsePlaceholder(s); ok {
			m.placeholder(path, p, got, present, out)
			return
		}
		want = interpolate(s, m.vars)
	}
	if !present {
		*out = append(*out, mismatch{Path: path, Msg: "expected " + show(want) + ", got nothing"})
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*out = append(*out, mismatch{Path: path, Msg: "expected an object, got " + show(got)})
			return
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, has := g[k]
			m.value(joinPath(path, k), w[k], gv, has, out)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*out = append(*out, mismatch{Path: path, Msg: "expected an array, got " + show(got)})
			return
		}
		m.array(path, w, g, out)
	case json.Number:
		if !numberEqual(w, got) {
			*out = append(*out, mismatch{Path: path, Msg: "expected " + show(want) + ", got " + show(got)})
		}
	default:
		if !jsonEqual(want, got) {
			*out = append(*out, mismatch{Path: path, Msg: "expected " + show(want) + ", got " + show(got)})
		}
	}
}

// array matches element by element, or, with a {{more}} element, as an ordered subsequence.
func (m *matcher) array(path string, want, got []any, out *[]mismatch) {
	var elems []any
	more := false
	for _, w := range want {
		if s, ok := w.(string); ok {
			if p, ok := parsePlaceholder(s); ok && p.kind == "more" {
				more = true
				continue
			}
		}
		elems = append(elems, w)
	}
	if !more {
		if len(want) != len(got) {
			*out = append(*out, mismatch{Path: path, Msg: fmt.Sprintf("expected %d elements, got %d: %s", len(want), len(got), summarize(got))})
			return
		}
		for i := range want {
			m.value(fmt.Sprintf("%s[%d]", path, i), want[i], got[i], true, out)
		}
		return
	}
	j := 0
	for i, w := range elems {
		found := false
		for ; j < len(got); j++ {
			if len(m.try(fmt.Sprintf("%s[%d]", path, j), w, got[j])) == 0 {
				found, j = true, j+1
				break
			}
		}
		if !found {
			*out = append(*out, mismatch{Path: path, Msg: fmt.Sprintf("expected element %d (%s) among %s", i, show(w), show(got))})
			return
		}
	}
}

var seqIDTail = regexp.MustCompile(`^\|[0-9]{7}$`)

func (m *matcher) placeholder(path string, p placeholder, got any, present bool, out *[]mismatch) {
	fail := func(req, format string, args ...any) {
		*out = append(*out, mismatch{Path: path, Msg: fmt.Sprintf(format, args...), Req: req})
	}
	switch p.kind {
	case "absent":
		if present {
			fail("", "expected no value, got %s", show(got))
		}
		return
	}
	if p.not != "" {
		lit := m.interpolate(p.not)
		if present && (got == lit || show(got) == lit) {
			fail("", "expected anything but %s", show(lit))
			return
		}
	}
	if p.kind == "not" {
		return
	}
	if !present {
		fail("", "expected %s, got nothing", "{{"+p.kind+"}}")
		return
	}
	if req, msg := m.kindMismatch(p, got); msg != "" {
		fail(req, "%s", msg)
		return
	}
	if p.kind == "conv" || p.kind == "user" {
		return // a reference to a known id, not a binding
	}
	if p.name == "" {
		return
	}
	if prev, ok := m.bound[p.name]; ok {
		if !jsonEqual(prev, got) {
			fail("", "expected %s (as %s was first), got %s", show(prev), p.name, show(got))
		}
		return
	}
	m.bound[p.name] = got
}

// kindMismatch checks a present value against a placeholder's kind, and returns the requirement
// and the message of a mismatch ("" when it matches).
func (m *matcher) kindMismatch(p placeholder, got any) (req, msg string) {
	s, isString := got.(string)
	switch p.kind {
	case "string", "id":
		if !isString || s == "" {
			return "", fmt.Sprintf("expected a non-empty string, got %s", show(got))
		}
	case "number":
		if _, ok := got.(json.Number); !ok {
			return "", fmt.Sprintf("expected a number, got %s", show(got))
		}
	case "bool":
		if _, ok := got.(bool); !ok {
			return "", fmt.Sprintf("expected true or false, got %s", show(got))
		}
	case "object":
		if _, ok := got.(map[string]any); !ok {
			return "", fmt.Sprintf("expected an object, got %s", show(got))
		}
	case "array":
		if _, ok := got.([]any); !ok {
			return "", fmt.Sprintf("expected an array, got %s", show(got))
		}
	case "seqid":
		conv := m.vars["conv"]
		if !isString || !strings.HasPrefix(s, conv) || !seqIDTail.MatchString(s[len(conv):]) {
			return "DL7", fmt.Sprintf("expected an id of the form {conversationId}|0000000, got %s", show(got))
		}
	case "timestamp":
		t, err := time.Parse(time.RFC3339Nano, s)
		if !isString || err != nil || !strings.HasSuffix(s, "Z") || t.Location() != time.UTC {
			return "A2043", fmt.Sprintf("expected an RFC 3339 UTC time ending in Z, got %s", show(got))
		}
	case "url", "wsurl":
		return "", urlMismatch(p.kind, s, isString, got)
	case "jwt":
		if _, err := jwtClaims(s); !isString || err != nil {
			return "DL3", fmt.Sprintf("expected a JWT, got %s", show(got))
		}
	case "conv", "user":
		if !isString || s != m.vars[p.kind] {
			return "", fmt.Sprintf("expected the %s id %s, got %s", map[string]string{"conv": "conversation", "user": "user"}[p.kind], show(m.vars[p.kind]), show(got))
		}
	case "includes":
		return "", "{{includes …}} is for headers only"
	}
	return "", ""
}

// urlMismatch checks a value against {{url}} (absolute http(s)) or {{wsurl}} (ws(s)).
func urlMismatch(kind, s string, isString bool, got any) string {
	u, err := url.Parse(s)
	schemes := map[string]bool{"http": true, "https": true}
	if kind == "wsurl" {
		schemes = map[string]bool{"ws": true, "wss": true}
	}
	if !isString || err != nil || !schemes[u.Scheme] || u.Host == "" {
		return fmt.Sprintf("expected an absolute %s URL, got %s", strings.TrimSuffix(kind, "url")+"http(s)", show(got))
	}
	return ""
}

// headerMatches compares a header value with an expected one: equal ignoring case, any value
// for {{any}}, absent for {{absent}}, or a comma-separated list that includes every listed name
// (or is "*") for {{includes a, b}}.
func headerMatches(want string, got []string) bool {
	p, isPlaceholder := parsePlaceholder(want)
	switch {
	case isPlaceholder && p.kind == "absent":
		return len(got) == 0
	case len(got) == 0:
		return false
	case isPlaceholder && p.kind == "any":
		return true
	case isPlaceholder && p.kind == "includes":
		have := map[string]bool{}
		for _, v := range got {
			for _, item := range strings.Split(v, ",") {
				have[strings.ToLower(strings.TrimSpace(item))] = true
			}
		}
		if have["*"] {
			return true
		}
		for _, item := range strings.Split(p.name, ",") {
			if !have[strings.ToLower(strings.TrimSpace(item))] {
				return false
			}
		}
		return true
	}
	return strings.EqualFold(strings.TrimSpace(got[0]), want)
}

func numberEqual(want json.Number, got any) bool {
	g, ok := got.(json.Number)
	if !ok {
		return false
	}
	if want == g {
		return true
	}
	a, errA := strconv.ParseFloat(string(want), 64)
	b, errB := strconv.ParseFloat(string(g), 64)
	return errA == nil && errB == nil && a == b
}

func jsonEqual(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// encode returns the compact JSON of v, without escaping HTML characters.
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(fmt.Sprintf("%q", fmt.Sprint(v)))
	}
	return bytes.TrimSpace(buf.Bytes())
}

// show renders a value for a message: compact JSON, cut at 160 characters.
func show(v any) string {
	s := string(encode(v))
	if len(s) > 160 {
		s = s[:157] + "…"
	}
	return s
}

// decodeJSON decodes one JSON value keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// pointer resolves a JSON pointer (RFC 6901) in v.
func pointer(v any, ptr string) (any, bool) {
	if ptr == "" || ptr == "/" {
		return v, ptr == "" || ptr == "/"
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}
