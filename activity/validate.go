package activity

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxActivityChars is the largest serialized activity Direct Line and Azure Bot Service accept:
// 256K characters (directline.md §10).
const MaxActivityChars = 256 * 1024

// Validation error codes. They are stable; messages are not.
const (
	CodeMalformed       = "Malformed"       // not a JSON object of the activity schema
	CodeMissingProperty = "MissingProperty" // a required property is absent
	CodeBadArgument     = "BadArgument"     // a property has a value the protocol forbids
	CodeTooLarge        = "TooLarge"        // over MaxActivityChars
)

// ErrInvalid is matched by every *ValidationError (errors.Is(err, ErrInvalid)).
var ErrInvalid = errors.New("invalid activity")

// ValidationError says what is wrong with an activity. Rule names the specification rule
// (botframework-activity.md), when there is one.
type ValidationError struct {
	Code    string
	Field   string
	Rule    string
	Message string
	Err     error
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("activity")
	if e.Field != "" {
		b.WriteString(" field " + e.Field)
	}
	b.WriteString(": " + e.Message)
	if e.Rule != "" {
		b.WriteString(" (rule " + e.Rule + ")")
	}
	return b.String()
}

// Is makes every ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying decoding error, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

// CheckSize reports a *ValidationError when the serialized activity b has more than
// MaxActivityChars characters.
func CheckSize(b []byte) error {
	if len(b) <= MaxActivityChars { // bytes ≥ characters
		return nil
	}
	if n := utf8.RuneCount(b); n > MaxActivityChars {
		return &ValidationError{Code: CodeTooLarge, Rule: "", Message: fmt.Sprintf("%d characters is over the limit of %d", n, MaxActivityChars)}
	}
	return nil
}

// Validate checks what the protocol requires of any activity a channel accepts: a type (A2010),
// a name on events and invokes (A5001, A5401), and well-formed times (A2043, A2050).
// It returns nil or a *ValidationError; the channel-assigned fields (id, timestamp, channelId,
// serviceUrl) are not checked here, because the receiving channel sets them.
func (a *Activity) Validate() error {
	switch {
	case a.Type == "":
		return &ValidationError{Code: CodeMissingProperty, Field: "type", Rule: "A2010", Message: "an activity must have a type"}
	case (a.Type == TypeEvent || a.Type == TypeInvoke) && a.Name == "":
		rule := "A5001"
		if a.Type == TypeInvoke {
			rule = "A5401"
		}
		return &ValidationError{Code: CodeMissingProperty, Field: "name", Rule: rule, Message: a.Type + " activities must have a name"}
	case !a.Timestamp.IsZero() && a.Timestamp.Time().IsZero():
		return &ValidationError{Code: CodeBadArgument, Field: "timestamp", Rule: "A2043", Message: "timestamp is not an RFC 3339 time"}
	case !a.LocalTimestamp.IsZero() && a.LocalTimestamp.Time().IsZero():
		return &ValidationError{Code: CodeBadArgument, Field: "localTimestamp", Rule: "A2050", Message: "localTimestamp is not an RFC 3339 time"}
	case a.From != nil && a.From.ID == "" && a.From.Name != "":
		return &ValidationError{Code: CodeMissingProperty, Field: "from.id", Rule: "A2060", Message: "from has a name but no id"}
	}
	return nil
}

// CheckUTF8 reports a *ValidationError (CodeBadArgument) when b, a serialized activity from
// outside, is not valid UTF-8 anywhere — in a modelled string or inside a member kept raw
// (channelData, value, entities, unknown members). encoding/json replaces invalid bytes in the
// strings it decodes but keeps raw members byte for byte, and an activity holding invalid bytes
// cannot be sent in a websocket text frame: browsers and ws close the stream (1006) and never
// get that frame's activities. Every door that decodes an activity from outside calls
// CheckUTF8 before Decode. Escaped lone surrogates ("\ud800") are not refused: they are ASCII
// on the wire, encoding/json decodes them to U+FFFD in modelled strings, and a raw member keeps
// the escape, which JSON.parse accepts.
func CheckUTF8(b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	at := 0
	for at < len(b) {
		r, n := utf8.DecodeRune(b[at:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		at += n
	}
	return &ValidationError{Code: CodeBadArgument, Message: fmt.Sprintf("the body is not valid UTF-8 (an invalid byte at offset %d)", at)}
}
