package omnichannel

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// Error codes of the Connector's ErrorResponse (botframework.md §2) that /api/messages answers.
const (
	CodeBadArgument       = "BadArgument"
	CodeBadSyntax         = "BadSyntax"
	CodeMissingProperty   = "MissingProperty"
	CodeUnauthorized      = "Unauthorized"
	CodeMessageSizeTooBig = "MessageSizeTooBig"
	CodeServiceError      = "ServiceError"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrUnauthorized: an inbound token was refused. The error says why, never the token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNoKeys: the keys of Omnichannel's tokens cannot be had (metadata or JWKS unreachable).
	ErrNoKeys = errors.New("token validation keys unavailable")
	// ErrTooLarge: an outbound activity cannot be made to fit MaxMessageBytes.
	ErrTooLarge = errors.New("activity over the omnichannel message limit")
	// ErrOutcomeUnknown: Omnichannel may or may not have taken an activity (502, 504, or an
	// answer lost after the request was sent); an escalation is not sent again then.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrNotOmnichannel: the conversation's customer is not on this channel.
	ErrNotOmnichannel = errors.New("conversation is not an omnichannel conversation")
)

// apiError is an inbound error answered in the Connector's shape
// {"error":{"code":"…","message":"…"}} with an HTTP status.
type apiError = connector.Error

// writeError answers err in the Connector's error shape. An error that is not an *apiError is
// a 500 ServiceError whose text is not shown.
func writeError(w http.ResponseWriter, err error) {
	connector.WriteError(w, err, connector.BearerChallenge)
}

// unauthorized is a 401 saying why, briefly.
func unauthorized(reason string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "unauthorized: " + reason, Err: ErrUnauthorized}
}

// badRequest is a 400 in the Connector's shape.
func badRequest(code, msg string, err error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: msg, Err: err}
}

// validationError maps an activity validation error to the Connector's codes.
func validationError(err error) *apiError {
	var ve *activity.ValidationError
	if !errors.As(err, &ve) {
		return badRequest(CodeBadArgument, err.Error(), err)
	}
	switch ve.Code {
	case activity.CodeTooLarge:
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeMessageSizeTooBig, Message: ve.Error(), Err: err}
	case activity.CodeMalformed:
		return badRequest(CodeBadSyntax, "the body is not a JSON activity", err)
	case activity.CodeMissingProperty:
		return badRequest(CodeMissingProperty, ve.Error(), err)
	}
	return badRequest(CodeBadArgument, ve.Error(), err)
}

// SendError is a failed call to Omnichannel (or to its token endpoint): what was being done,
// the HTTP status (0 when no answer came), the error code of the body, and whether sending
// again may help (Retryable) or the far side may have taken the request all the same
// (Ambiguous: 502, 504, or an answer lost after the request was written).
type SendError struct {
	Op         string
	Status     int
	Code       string
	RetryAfter time.Duration
	Retryable  bool
	Ambiguous  bool
	Err        error
}

func (e *SendError) Error() string {
	s := "omnichannel: " + e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SendError) Unwrap() error { return e.Err }

// Is makes an ambiguous SendError match ErrOutcomeUnknown.
func (e *SendError) Is(target error) bool { return target == ErrOutcomeUnknown && e.Ambiguous }

// deliveryError wraps err as the *bridge.DeliveryError the Hub expects from Send.
func deliveryError(to bridge.Leg, err error) error {
	de := &bridge.DeliveryError{Leg: to.Key(), Err: err}
	var se *SendError
	if errors.As(err, &se) {
		de.Status, de.Retryable = se.Status, se.Retryable
	}
	de.Timeout = errors.Is(err, errDeadline)
	return de
}

// errDeadline marks a send that ran out of time.
var errDeadline = errors.New("deadline exceeded")
