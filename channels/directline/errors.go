package directline

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/connector"
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
// in httpStatusCode when the bot failed, as the real service adds it, and Retry-After (seconds)
// for 429 and 503.
type apiError = connector.Error

func writeError(w http.ResponseWriter, e *apiError) {
	connector.WriteError(w, e, "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if set, ok := v.(activitySet); ok { // stored JSON, written as it is (see writeFrame)
		connector.WriteRaw(w, status, bytes.TrimSuffix(appendSet(nil, set), []byte("\n")))
		return
	}
	connector.WriteJSON(w, status, v)
}

func errBadArgument(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadArgument, Message: msg}
}

func errUnknownConversation() *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeBadArgument, Message: "Unknown conversation"}
}

func errThrottled() *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: CodeThrottled, Message: "too many activities; retry later", RetryAfter: 1}
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
	case connector.IsUnavailable(err):
		return connector.Unavailable()
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
