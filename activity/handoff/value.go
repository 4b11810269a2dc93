package handoff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// Kind is the type of a context value. A Value keeps the kind it arrived with, so that a
// variable written as 101 is not confused with one written as "101" or 101.0.
type Kind string

// Value kinds. String, Integer, Number and Boolean are the scalar types bots and contact
// centres use for context variables; JSON holds an array or object as it came, and Null the
// JSON null. A Value's JSON form is the natural one, and the literal decides the kind: a number
// literal with no fraction and no exponent that fits in 64 bits is an Integer, any other number
// is a Number (its literal kept exactly, so 2.0 stays 2.0).
const (
	KindString  Kind = "string"
	KindInteger Kind = "integer"
	KindNumber  Kind = "number"
	KindBoolean Kind = "boolean"
	KindJSON    Kind = "json"
	KindNull    Kind = "null"
)

// Value is one context value with its type. The zero Value is the JSON null.
type Value struct {
	kind Kind
	s    string          // KindString text, or KindNumber literal
	i    int64           // KindInteger
	b    bool            // KindBoolean
	raw  json.RawMessage // KindJSON, compact
}

// String returns a string Value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Integer returns an integer Value.
func Integer(i int64) Value { return Value{kind: KindInteger, i: i} }

// Number returns a number Value. Its literal is the shortest one that reads back as f, with
// ".0" added to an integral value so that it stays a Number. NaN and the infinities have no JSON
// form: Number returns the null Value for them.
func Number(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{kind: KindNull}
	}
	lit := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(lit, ".eE") {
		lit += ".0"
	}
	return Value{kind: KindNumber, s: lit}
}

// Boolean returns a boolean Value.
func Boolean(b bool) Value { return Value{kind: KindBoolean, b: b} }

// Null returns the null Value.
func Null() Value { return Value{kind: KindNull} }

// ParseValue reads one JSON value of any type.
func ParseValue(raw []byte) (Value, error) {
	var v Value
	if err := v.UnmarshalJSON(raw); err != nil {
		return Value{}, err
	}
	return v, nil
}

// Kind returns the value's kind; the zero Value is KindNull.
func (v Value) Kind() Kind {
	if v.kind == "" {
		return KindNull
	}
	return v.kind
}

// Str returns the text of a String value.
func (v Value) Str() (string, bool) { return v.s, v.kind == KindString }

// Int returns an Integer value.
func (v Value) Int() (int64, bool) { return v.i, v.kind == KindInteger }

// Float returns an Integer or Number value as a float64.
func (v Value) Float() (float64, bool) {
	switch v.kind {
	case KindInteger:
		return float64(v.i), true
	case KindNumber:
		f, err := strconv.ParseFloat(v.s, 64)
		return f, err == nil
	}
	return 0, false
}

// Bool returns a Boolean value.
func (v Value) Bool() (bool, bool) { return v.b, v.kind == KindBoolean }

// Literal returns the JSON literal of a Number value, exactly as it arrived.
func (v Value) Literal() (string, bool) { return v.s, v.kind == KindNumber }

// Raw returns the JSON text of the value.
func (v Value) Raw() json.RawMessage {
	b, _ := v.MarshalJSON()
	return b
}

// String returns the value as text: a string as it is, a number as its literal, a boolean as
// true or false, null as the empty string, and an array or object as compact JSON.
func (v Value) String() string {
	switch v.Kind() {
	case KindString, KindNumber:
		return v.s
	case KindInteger:
		return strconv.FormatInt(v.i, 10)
	case KindBoolean:
		return strconv.FormatBool(v.b)
	case KindJSON:
		return string(v.raw)
	}
	return ""
}

// Equal reports whether v and w have the same kind and the same value.
func (v Value) Equal(w Value) bool {
	if v.Kind() != w.Kind() {
		return false
	}
	switch v.Kind() {
	case KindJSON:
		return bytes.Equal(v.raw, w.raw)
	case KindInteger:
		return v.i == w.i
	case KindBoolean:
		return v.b == w.b
	}
	return v.s == w.s
}

// MarshalJSON writes the value in its natural JSON form.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Kind() {
	case KindString:
		return activity.Marshal(v.s)
	case KindInteger:
		return strconv.AppendInt(nil, v.i, 10), nil
	case KindNumber:
		return []byte(v.s), nil
	case KindBoolean:
		return strconv.AppendBool(nil, v.b), nil
	case KindJSON:
		return append([]byte(nil), v.raw...), nil
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads any JSON value, choosing the kind from the literal as described at Kind.
func (v *Value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("handoff: value: %w", errEmptyJSON)
	}
	switch c := b[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("handoff: value: %w", err)
		}
		*v = String(s)
	case c == 't' || c == 'f':
		var x bool
		if err := json.Unmarshal(b, &x); err != nil {
			return fmt.Errorf("handoff: value: %w", err)
		}
		*v = Boolean(x)
	case c == 'n':
		if string(b) != "null" {
			return fmt.Errorf("handoff: value: invalid literal %.20q", b)
		}
		*v = Null()
	case c == '[' || c == '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return fmt.Errorf("handoff: value: %w", err)
		}
		*v = Value{kind: KindJSON, raw: buf.Bytes()}
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("handoff: value: %w", err)
		}
		*v = numberValue(string(n))
	}
	return nil
}

// numberValue returns the Integer or Number for a valid JSON number literal.
func numberValue(lit string) Value {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return Integer(i)
		}
	}
	return Value{kind: KindNumber, s: lit}
}

// exactInt returns the integer a Number literal denotes, when it is integral and fits in 64 bits.
func exactInt(lit string) (int64, bool) {
	r, ok := new(big.Rat).SetString(lit)
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// Variables is a set of context variables. Names are case-exact: "Email" and "email" are two
// variables, as in Omnichannel workstreams.
type Variables map[string]Value

// Names returns the variable names in byte order.
func (vs Variables) Names() []string {
	names := make([]string, 0, len(vs))
	for k := range vs {
		names = append(names, k)
	}
	sortStrings(names)
	return names
}

// Clone returns a copy of vs (nil for an empty set).
func (vs Variables) Clone() Variables {
	if len(vs) == 0 {
		return nil
	}
	c := make(Variables, len(vs))
	for k, v := range vs {
		c[k] = v
	}
	return c
}

// Equal reports whether vs and ws hold the same names with equal values.
func (vs Variables) Equal(ws Variables) bool {
	if len(vs) != len(ws) {
		return false
	}
	for k, v := range vs {
		w, ok := ws[k]
		if !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// ParseVariables reads a JSON object as variables, keeping every member's type and name. A
// member named twice keeps its last value, as encoding/json does.
func ParseVariables(raw []byte) (Variables, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("handoff: variables: %w", errNotObject)
	}
	var m map[string]Value
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("handoff: variables: %w", err)
	}
	return Variables(m).Clone(), nil
}
