// Package connector holds what the channels that speak the Bot Framework's HTTP protocols share:
// the error shape {"error":{"code","message"}} of the Connector API and of Direct Line 3.0
// (reference/botframework.md §2, reference/directline.md §4) and the writers of JSON answers.
// Each channel keeps its own error codes; the shape and the writer live here once.
package connector

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bfbridge/bfbridge/activity"
)

// CodeServiceError is the code of an internal failure, in both protocols.
const CodeServiceError = "ServiceError"

// BearerChallenge is the WWW-Authenticate value the Connector endpoints send with a 401.
const BearerChallenge = `Bearer realm="bfbridge"`

// Error is an error answered in the shape {"error":{"code":"…","message":"…"}} with an HTTP
// status. Err, the cause, is never written.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in seconds, is sent as the Retry-After header when positive (429, 503).
	RetryAfter int
	// BotStatus is written as the top-level httpStatusCode when positive, as Direct Line adds
	// it when the bot failed.
	BotStatus int
	Err       error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with status, code and message.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// ErrorDetail is the error member of an ErrorResponse.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorBody is the ErrorResponse: the error, and the bot's status when Direct Line adds it.
type ErrorBody struct {
	Error          ErrorDetail `json:"error"`
	HTTPStatusCode int         `json:"httpStatusCode,omitempty"`
}

// internalError is what an error that is not an *Error is answered with: its text may say more
// than a caller should see.
func internalError() *Error {
	return New(http.StatusInternalServerError, CodeServiceError, "internal error")
}

// WriteError answers err in the error shape with its status, and Retry-After when set. An error
// that does not wrap an *Error is a 500 ServiceError whose text is not shown, or a 503 with
// Retry-After when it says it is Unavailable (the bridge's store is down: see Unavailable). A 401
// carries challenge as WWW-Authenticate when challenge is not "".
func WriteError(w http.ResponseWriter, err error, challenge string) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case IsUnavailable(err):
		e = Unavailable()
	default:
		e = internalError()
	}
	if e.Status == http.StatusUnauthorized && challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteJSON(w, e.Status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message}, HTTPStatusCode: e.BotStatus})
}

// UnavailableRetryAfter is the Retry-After, in seconds, of a 503 for a store outage.
const UnavailableRetryAfter = 2

// IsUnavailable reports whether err says, through an Unavailable() bool method somewhere in its
// chain, that a dependency of the server is down for now (bridge.ErrStoreUnavailable).
func IsUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// Unavailable is the answer to an outage: 503 ServiceError with Retry-After.
func Unavailable() *Error {
	e := New(http.StatusServiceUnavailable, CodeServiceError, "the bridge cannot reach its store right now; retry shortly")
	e.RetryAfter = UnavailableRetryAfter
	return e
}

// encodeFailure is the body answered when a response cannot be encoded.
const encodeFailure = `{"error":{"code":"ServiceError","message":"cannot encode the response"}}`

// WriteJSON writes v as a JSON answer with status, encoded as activity.Marshal encodes (no HTML
// escaping). A value that cannot be encoded is answered 500 ServiceError.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := activity.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(encodeFailure)
	}
	WriteRaw(w, status, b)
}

// WriteRaw writes b, already JSON, as the answer with status.
func WriteRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ParseError reads the code and message of an ErrorResponse, as the far side sent them (the
// caller bounds what it keeps). ok is false when b is not one.
func ParseError(b []byte) (code, message string, ok bool) {
	var body struct {
		Error *ErrorDetail `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil || body.Error == nil {
		return "", "", false
	}
	return body.Error.Code, body.Error.Message, true
}
