package salesforce

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrOutcomeUnknown: Salesforce may or may not have taken a request (502, 504, or an answer
	// lost after the request was written). Every request the channel makes names its object
	// with an id of the bridge's own, so such a request is sent again (see post.go).
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrSessionLost: an anonymous customer's token was refused and could not be continued; the
	// MIAW conversation cannot be reached any more.
	ErrSessionLost = errors.New("salesforce session lost")
	// ErrNotEscalated: the conversation has no MIAW conversation.
	ErrNotEscalated = errors.New("conversation not escalated to salesforce")
	// errDeadline marks a call that ran out of time.
	errDeadline = errors.New("deadline exceeded")
)

// APIError is a failed call to MIAW: what was being done, the HTTP status (0 when no answer
// came), the message of the body when it had one, and whether sending again may help
// (Retryable) or Salesforce may have taken the request all the same (Ambiguous).
type APIError struct {
	Op         string
	Status     int
	Message    string
	RetryAfter time.Duration
	Retryable  bool
	Ambiguous  bool
	Err        error
}

func (e *APIError) Error() string {
	s := "salesforce: " + e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *APIError) Unwrap() error { return e.Err }

// Is makes an ambiguous APIError match ErrOutcomeUnknown.
func (e *APIError) Is(target error) bool { return target == ErrOutcomeUnknown && e.Ambiguous }

// deliveryError wraps err as the *bridge.DeliveryError the Hub's outbox expects from Send.
func deliveryError(to bridge.Leg, err error) error {
	de := &bridge.DeliveryError{Leg: to.Key(), Err: err}
	var ae *APIError
	if errors.As(err, &ae) {
		de.Status, de.Retryable, de.RetryAfter = ae.Status, ae.Retryable, ae.RetryAfter
	}
	// Timeout stays false: every request names its object with an id of the bridge's own, so
	// the outbox may send again after a call that ran out of time (see post.go).
	return de
}
