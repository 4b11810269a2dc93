package botframework

import (
	"errors"
	"net/http"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// Error codes of the Connector API's ErrorResponse (botframework.md §2; directline.md §4).
const (
	CodeBadArgument          = "BadArgument"
	CodeBadSyntax            = "BadSyntax"
	CodeMissingProperty      = "MissingProperty"
	CodeUnauthorized         = "Unauthorized"
	CodeConversationNotFound = "ConversationNotFound"
	CodeNotFound             = "NotFound"
	CodeMessageSizeTooBig    = "MessageSizeTooBig"
	CodeNotImplemented       = "NotImplemented"
	CodeServiceError         = "ServiceError"
)

// apiError is an error answered in the Connector API's shape:
// {"error":{"code":"…","message":"…"}}.
type apiError = connector.Error

func newAPIError(status int, code, msg string) *apiError {
	return connector.New(status, code, msg)
}

// writeError answers err in the Connector API's error shape. Errors that are not *apiError
// become 500 ServiceError without their text, which may say more than a caller should see.
func writeError(w http.ResponseWriter, err error) {
	connector.WriteError(w, err, connector.BearerChallenge)
}

// validationError maps an activity validation error to the Connector API's codes.
func validationError(err error) *apiError {
	var ve *activity.ValidationError
	if !errors.As(err, &ve) {
		return newAPIError(http.StatusBadRequest, CodeBadArgument, err.Error())
	}
	switch ve.Code {
	case activity.CodeTooLarge:
		return newAPIError(http.StatusRequestEntityTooLarge, CodeMessageSizeTooBig, ve.Error())
	case activity.CodeMalformed:
		return newAPIError(http.StatusBadRequest, CodeBadSyntax, ve.Error())
	case activity.CodeMissingProperty:
		return newAPIError(http.StatusBadRequest, CodeMissingProperty, ve.Error())
	}
	return newAPIError(http.StatusBadRequest, CodeBadArgument, ve.Error())
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	connector.WriteJSON(w, status, v)
}
