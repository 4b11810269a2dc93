package dynamics

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

// Error codes of the Messaging API's problem bodies (contact-centers-t2.md §1, CC
// error-handling.md).
const (
	CodeBadOrganization     = 30001
	CodeBadChannel          = 30002
	CodeUnsupported         = 30003
	CodeChannelConfig       = 30004
	CodeBadConversationID   = 30005
	CodeTooManyContext      = 30010
	CodeTextTooLong         = 30011
	CodeMalformedBody       = 30012
	CodeNoSuchConversation  = 30013
	CodeChannelNotLinked    = 30014
	CodeSerialization       = 30015
	CodeNoTextOrAttachments = 30016
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrOutcomeUnknown: the API may or may not have taken a call (502, 504, or an answer
	// lost after the request was written).
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrNoConversation: the conversation has no Dynamics conversation (never created, or
	// its id is lost).
	ErrNoConversation = errors.New("no dynamics conversation")
	// ErrUnauthorized: a webhook call's token was refused.
	ErrUnauthorized = errors.New("unauthorized")
)

// Problem is an RFC 7807 problem+json body, with the Messaging API's numeric error code when
// the body has one. Which member carries the code is not documented: "code", "errorCode" and
// "errorcode" are read, as a number or a numeric string (unverified against a live org).
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title,omitempty"`
	Status   int    `json:"status,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Code     int    `json:"code,omitempty"`
}

// maxProblemBytes bounds what is read of an error body.
const maxProblemBytes = 16 << 10

// ParseProblem reads a problem body. It returns false when b is not a JSON object.
func ParseProblem(b []byte) (Problem, bool) {
	var raw map[string]json.RawMessage
	if len(b) > maxProblemBytes || json.Unmarshal(b, &raw) != nil || raw == nil {
		return Problem{}, false
	}
	var p Problem
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(raw[k], &s)
		return clip(s, 200)
	}
	p.Type, p.Title, p.Detail, p.Instance = str("type"), str("title"), str("detail"), str("instance")
	p.Status = intOf(raw["status"])
	for _, k := range []string{"code", "errorCode", "errorcode", "ErrorCode"} {
		if n := intOf(raw[k]); n != 0 {
			p.Code = n
			break
		}
	}
	return p, true
}

// intOf reads a JSON integer, or a string holding one; 0 otherwise.
func intOf(raw json.RawMessage) int {
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := strconv.Atoi(n.String()); err == nil {
			return i
		}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return i
		}
	}
	return 0
}

// APIError is a failed call to the Messaging API or its token endpoint: what was being done,
// the HTTP status (0 when no answer came), the problem body, the x-ms-correlation-id, and how
// to go on: Retryable (sending again may help, after RetryAfter when set) and Ambiguous (the
// far side may have taken the call).
type APIError struct {
	Op            string
	Status        int
	Problem       Problem
	CorrelationID string
	RetryAfter    time.Duration
	Retryable     bool
	Ambiguous     bool
	Err           error
}

func (e *APIError) Error() string {
	s := "dynamics: " + e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Problem.Code != 0 {
		s += fmt.Sprintf(": code %d", e.Problem.Code)
	}
	if e.Problem.Title != "" {
		s += ": " + e.Problem.Title
	}
	if e.CorrelationID != "" {
		s += " (x-ms-correlation-id " + e.CorrelationID + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *APIError) Unwrap() error { return e.Err }

// Is makes an ambiguous APIError match ErrOutcomeUnknown.
func (e *APIError) Is(target error) bool { return target == ErrOutcomeUnknown && e.Ambiguous }

// deliveryError wraps err as the *bridge.DeliveryError the Hub expects from Send.
func deliveryError(to bridge.Leg, err error) error {
	de := &bridge.DeliveryError{Leg: to.Key(), Err: err}
	var ae *APIError
	if errors.As(err, &ae) {
		de.Status, de.Retryable, de.RetryAfter = ae.Status, ae.Retryable, ae.RetryAfter
	}
	if errors.Is(err, ErrNoConversation) {
		// The create is still under way (the customer spoke while the bot escalated): try again
		// once it is stored.
		de.Retryable, de.RetryAfter = true, time.Second
	}
	// Timeout is never set: the outbox does not retry a timed-out delivery, and the policy
	// resends a message whose answer was lost (see doc.go).
	return de
}

// errDeadline marks a call that ran out of time.
var errDeadline = errors.New("deadline exceeded")

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// writeProblem answers an inbound call with a problem+json body.
func writeProblem(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bfbridge"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: title, Status: status})
}
