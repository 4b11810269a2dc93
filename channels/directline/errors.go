package directline

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Error codes of Direct Line 3.0 error bodies (directline.md §4). Codes and statuses are stable;
// messages are not.
const (
	CodeBadArgument         = "BadArgument"
	CodeMissingProperty     = "MissingProperty"
	CodeTokenExpired        = "TokenExpired"
	CodeForbidden           = "Forbidden"
	CodeNotFound            = "NotFound"
	CodeTooLarge            = "MessageSizeTooBig"
	CodeThrottled           = "Throttled"
	CodeBotRejectedActivity = "BotRejectedActivity"
	CodeBotError            = "BotError"
	CodeServiceError        = "ServiceError"
)

// apiError is a Direct Line error response: {"error":{"code","message"}}, plus the bot's status
// in httpStatusCode when the bot failed, as the real service adds it.
type apiError struct {
	Status     int    `json:"-"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter int    `json:"-"` // seconds, for 429 and 503
	BotStatus  int    `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func writeError(w http.ResponseWriter, e *apiError) {
	body := struct {
		Error          *apiError `json:"error"`
		HTTPStatusCode int       `json:"httpStatusCode,omitempty"`
	}{e, e.BotStatus}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if set, ok := v.(activitySet); ok { // stored JSON, written as it is (see writeFrame)
		b = bytes.TrimSuffix(appendSet(nil, set), []byte("\n"))
	} else {
		b, err = activity.Marshal(v)
	}
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"ServiceError","message":"cannot encode the response"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func errBadArgument(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadArgument, Message: msg}
}

func errUnknownConversation() *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeBadArgument, Message: "Unknown conversation"}
}

func errTooLarge(msg string) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: msg}
}

// errFromBridge maps an error of the Hub to the Direct Line error a client gets.
func errFromBridge(err error) *apiError {
	var de *bridge.DeliveryError
	switch {
	case errors.Is(err, bridge.ErrUnknownConversation):
		return errUnknownConversation()
	case errors.Is(err, bridge.ErrConversationEnded):
		return &apiError{Status: http.StatusForbidden, Code: CodeBadArgument, Message: "Conversation has ended"}
	case errors.As(err, &de) && de.Timeout:
		return &apiError{Status: http.StatusGatewayTimeout, Code: CodeBotError, Message: "Failed to send activity: bot timed out"}
	case errors.As(err, &de) && de.Status >= 400 && de.Status < 500:
		return &apiError{Status: http.StatusBadGateway, Code: CodeBotRejectedActivity, Message: "Failed to send activity: bot returned an error", BotStatus: de.Status}
	case errors.As(err, &de):
		return &apiError{Status: http.StatusBadGateway, Code: CodeBotError, Message: "Failed to send activity: bot returned an error", BotStatus: de.Status}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeServiceError, Message: "internal error"}
}
