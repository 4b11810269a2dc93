package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is the declared type of a context variable. Omnichannel's admin centre offers Text and
// Number; bots and pre-chat surveys also send whole numbers and booleans, so the engine keeps
// four scalar types and never confuses 101 with "101".
type Type string

// The context variable types.
const (
	TypeString  Type = "string"
	TypeInteger Type = "integer"
	TypeNumber  Type = "number"
	TypeBoolean Type = "boolean"
)

// parseType reads a type name as written in the configuration. Omnichannel's own names
// (text, whole number, decimal, bool) are accepted as synonyms.
func parseType(s string) (Type, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "string", "text":
		return TypeString, true
	case "integer", "int", "whole number":
		return TypeInteger, true
	case "number", "float", "decimal":
		return TypeNumber, true
	case "boolean", "bool":
		return TypeBoolean, true
	}
	return "", false
}

// Value is one typed context value. The zero Value is "no value": a variable holding it does not
// exist as far as conditions are concerned.
type Value struct {
	typ Type
	s   string
	i   int64
	f   float64
	b   bool
}

// String returns a string Value.
func String(s string) Value { return Value{typ: TypeString, s: s} }

// Integer returns an integer Value.
func Integer(i int64) Value { return Value{typ: TypeInteger, i: i} }

// Number returns a number Value. NaN and the infinities are not numbers a condition can compare,
// so Number returns the zero Value for them.
func Number(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}
	}
	return Value{typ: TypeNumber, f: f}
}

// Boolean returns a boolean Value.
func Boolean(b bool) Value { return Value{typ: TypeBoolean, b: b} }

// Type returns the value's type, or "" for the zero Value.
func (v Value) Type() Type { return v.typ }

// IsZero reports whether v is the zero Value.
func (v Value) IsZero() bool { return v.typ == "" }

// Str returns the text of a string Value.
func (v Value) Str() (string, bool) { return v.s, v.typ == TypeString }

// Int returns an integer Value.
func (v Value) Int() (int64, bool) { return v.i, v.typ == TypeInteger }

// Float returns an integer or number Value as a float64.
func (v Value) Float() (float64, bool) {
	switch v.typ {
	case TypeInteger:
		return float64(v.i), true
	case TypeNumber:
		return v.f, true
	}
	return 0, false
}

// Bool returns a boolean Value.
func (v Value) Bool() (bool, bool) { return v.b, v.typ == TypeBoolean }

// String returns the value as text, the way it appears in automated messages: a string as it
// is, numbers in their shortest decimal form, booleans as true or false, the zero Value as "".
func (v Value) String() string {
	switch v.typ {
	case TypeString:
		return v.s
	case TypeInteger:
		return strconv.FormatInt(v.i, 10)
	case TypeNumber:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case TypeBoolean:
		return strconv.FormatBool(v.b)
	}
	return ""
}

// GoString shows the type with the value, for test failures.
func (v Value) GoString() string {
	if v.typ == TypeString {
		return fmt.Sprintf("routing.String(%q)", v.s)
	}
	return fmt.Sprintf("routing.%s(%s)", v.typ, v.String())
}

// Equal reports whether v and w have the same type and value (strings compared exactly).
func (v Value) Equal(w Value) bool {
	return v.typ == w.typ && v.s == w.s && v.i == w.i && v.b == w.b && (v.f == w.f)
}

// As converts v to type t when that loses nothing: an integer becomes a number or its decimal
// text; a number with no fraction becomes an integer; text that reads as a number or as
// true/false becomes one; any scalar becomes text. It reports false when the conversion is not
// possible (for example "abc" to integer), and the caller keeps the original value.
func (v Value) As(t Type) (Value, bool) {
	if v.typ == t {
		return v, true
	}
	switch t {
	case TypeString:
		if v.typ != "" {
			return String(v.String()), true
		}
	case TypeInteger:
		switch v.typ {
		case TypeNumber:
			if v.f == math.Trunc(v.f) && v.f >= -(1<<63) && v.f < 1<<63 {
				return Integer(int64(v.f)), true
			}
		case TypeString:
			if i, err := strconv.ParseInt(strings.TrimSpace(v.s), 10, 64); err == nil {
				return Integer(i), true
			}
		}
	case TypeNumber:
		switch v.typ {
		case TypeInteger:
			return Number(float64(v.i)), true
		case TypeString:
			f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
			if n := Number(f); err == nil && !n.IsZero() {
				return n, true
			}
		}
	case TypeBoolean:
		if v.typ == TypeString {
			switch strings.ToLower(strings.TrimSpace(v.s)) {
			case "true":
				return Boolean(true), true
			case "false":
				return Boolean(false), true
			}
		}
	}
	return v, false
}

// MarshalJSON writes the value in its natural JSON form. A number always carries a fraction or
// an exponent (2 is written 2.0) so that it reads back as a number, not an integer.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.typ {
	case TypeString:
		return json.Marshal(v.s)
	case TypeInteger:
		return []byte(strconv.FormatInt(v.i, 10)), nil
	case TypeNumber:
		lit := strconv.FormatFloat(v.f, 'g', -1, 64)
		if !strings.ContainsAny(lit, ".eE") {
			lit += ".0"
		}
		return []byte(lit), nil
	case TypeBoolean:
		return []byte(strconv.FormatBool(v.b)), nil
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads a string, number, boolean or null. A number literal with no fraction and
// no exponent that fits in 64 bits is an integer; any other number is a number. Arrays and
// objects are refused: context variables are scalars.
func (v *Value) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return errors.New("routing: empty value")
	}
	switch data[0] {
	case 'n':
		if string(data) != "null" {
			return fmt.Errorf("routing: invalid value %q", data)
		}
		*v = Value{}
		return nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(data, &b); err != nil {
			return fmt.Errorf("routing: invalid value: %w", err)
		}
		*v = Boolean(b)
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("routing: invalid value: %w", err)
		}
		*v = String(s)
		return nil
	case '[', '{':
		return fmt.Errorf("routing: a context value must be a string, number or boolean, not %s", data[:1])
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("routing: invalid value: %w", err)
	}
	lit := n.String()
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			*v = Integer(i)
			return nil
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return fmt.Errorf("routing: invalid number %s", lit)
	}
	*v = Number(f)
	return nil
}

// coerceContext returns a copy of ctx with each declared variable converted to its declared type
// where As allows it. Values that cannot be converted keep their own type; conditions on them
// are then false (a type mismatch), as an Omnichannel rule on a Number variable never matches
// text that is not a number. Undeclared variables are kept as they are.
func coerceContext(vars map[string]Type, ctx map[string]Value, into map[string]Value) {
	for name, v := range ctx {
		if t, ok := vars[name]; ok {
			v, _ = v.As(t)
		}
		if v.IsZero() {
			delete(into, name)
			continue
		}
		into[name] = v
	}
}
