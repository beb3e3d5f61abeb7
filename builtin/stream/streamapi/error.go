package streamapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is an answer of the Stream object with a status of 400 or more and the body
// {"error":{"code":..,"message":..}}, and, in clients, a failure to reach the object
// (Status 0, Code CodeUnavailable, Err the cause for errors.Is).
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the cause of a failure to reach the object.
func (e *Error) Unwrap() error { return e.Err }

// Errorf is a 400 error with code.
func Errorf(code, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, a...)}
}

// errorBody is the JSON shape of an Error.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// MarshalJSON writes the error body.
func (e *Error) MarshalJSON() ([]byte, error) {
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	return json.Marshal(b)
}

// DecodeError reads an error answer's body; ok is false when body is not one.
func DecodeError(status int, body []byte) (e *Error, ok bool) {
	var b errorBody
	if json.Unmarshal(body, &b) != nil || b.Error.Code == "" {
		return nil, false
	}
	return &Error{Status: status, Code: b.Error.Code, Message: b.Error.Message}, true
}
