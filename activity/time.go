package activity

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"time"
)

// Time is an activity time stamp. A decoded value keeps the exact text it came with, so that
// localTimestamp keeps its offset (rules A2050/A2051) and a relayed activity is byte-faithful;
// a value made by NewTime is written as RFC 3339 UTC with a Z (rule A2043). Omnichannel context
// events carry Unix seconds instead of a string; those decode too and are written back as they came.
// The zero Time is absent: with the omitzero option it is never written, so an activity never
// carries "0001-01-01T00:00:00Z".
type Time struct {
	t   time.Time
	raw json.RawMessage
}

// NewTime returns the Time for t, written in UTC.
func NewTime(t time.Time) Time { return Time{t: t.UTC()} }

// Time returns the instant, or the zero time.Time when the value is absent or unparseable.
func (t Time) Time() time.Time { return t.t }

// IsZero reports whether the value is absent.
func (t Time) IsZero() bool { return t.t.IsZero() && t.raw == nil }

// String returns the text the value is written as.
func (t Time) String() string {
	b, _ := t.MarshalJSON()
	if s, err := strconv.Unquote(string(b)); err == nil {
		return s
	}
	return string(b)
}

// MarshalJSON writes the original text of a decoded value, or RFC 3339 UTC for a new one.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.raw != nil {
		return t.raw, nil
	}
	return []byte(`"` + t.t.UTC().Format(time.RFC3339Nano) + `"`), nil
}

// UnmarshalJSON accepts an RFC 3339 string (with any offset) or a number of Unix seconds
// (milliseconds when the number is too large to be seconds). Text that parses as neither is kept
// verbatim, with a zero instant: a relay must not reject or alter what it does not understand.
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*t = Time{}
		return nil
	}
	raw := append(json.RawMessage(nil), b...)
	*t = Time{raw: raw}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.t = v
		}
		return nil
	}
	if n, err := strconv.ParseFloat(string(b), 64); err == nil {
		if n > 1e11 { // beyond year 5138 in seconds: milliseconds
			t.t = time.UnixMilli(int64(n)).UTC()
		} else {
			t.t = time.Unix(int64(n), 0).UTC()
		}
		return nil
	}
	return &json.UnmarshalTypeError{Value: string(b), Type: timeType}
}

var timeType = reflect.TypeOf(time.Time{})
