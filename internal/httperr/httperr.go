// Package httperr owns the one JSON error shape every Holdfast HTTP endpoint answers with:
//
//	{"error":{"code":"bad_name","message":"..."}}
//
// and the codes of the HTTP endpoints. A code names the failure (not_found, conflict,
// payload_too_large, ...), never only its status class; docs/errors.md lists each with
// its status, where it appears and what a client should do.
//
// The codes HTTP shares with the Stream protocol are defined once, in its public contract
// (builtin/stream/streamapi, which may not import internal/), and taken from there: a
// failure has one code on every path.
package httperr

import (
	"encoding/json"
	"net/http"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// Codes used across Holdfast's HTTP endpoints. A code is stable; a message is for people.
const (
	CodeBadRequest   = streamapi.CodeBadRequest
	CodeBadName      = streamapi.CodeBadName
	CodeBadJSON      = streamapi.CodeBadJSON
	CodeInvalidUTF8  = streamapi.CodeInvalidUTF8
	CodeUnauthorized = "unauthorized" // 401: no API key, or a wrong one
	CodeForbidden    = streamapi.CodeForbidden
	CodeNotFound     = streamapi.CodeNotFound
	CodeMethod       = streamapi.CodeMethodNotAllowed
	CodeConflict     = streamapi.CodeConflict
	CodePrecondition = "precondition_failed"   // 412: If-Match / If-None-Match / If-Unmodified-Since failed
	CodeTooLarge     = streamapi.CodeTooLarge  // 413
	CodeRange        = "range_not_satisfiable" // 416: a Range past the end
	CodeInternal     = streamapi.CodeInternal
	CodeObjectError  = "object_error" // 500: the object's code failed (returned an error or panicked)
	CodeUnavailable  = streamapi.CodeUnavailable
	CodeTimeout      = "timeout" // 504 (408 for a request body that did not arrive in time)
)

// Body is the JSON document of an error.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Write sends status with the JSON error body.
func Write(w http.ResponseWriter, status int, code, message string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Body{Detail{code, message}})
}
