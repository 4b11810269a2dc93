package botframework

import (
	"errors"
	"net/http"

	"github.com/bfbridge/bfbridge/activity"
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
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newAPIError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// errorBody is the Connector ErrorResponse.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers err in the Connector API's error shape. Errors that are not *apiError
// become 500 ServiceError without their text, which may say more than a caller should see.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newAPIError(http.StatusInternalServerError, CodeServiceError, "internal error")
	}
	var body errorBody
	body.Error.Code = ae.Code
	body.Error.Message = ae.Message
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bfbridge"`)
	}
	writeJSON(w, ae.Status, body)
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
	b, err := activity.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"ServiceError","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
