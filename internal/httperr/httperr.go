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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/objclient"
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

// WriteCallError answers the failure of a call to an object (routed by internal/objclient)
// in the error shape: an answer of a Stream object (a *streamapi.Error with its status)
// keeps its status and code; a routing failure is 503 (no host, overloaded: Retry-After),
// 504 (no answer in time: the request may or may not have taken effect) or 400.
func WriteCallError(w http.ResponseWriter, err error) {
	var se *streamapi.Error
	if errors.As(err, &se) && se.Status >= 400 {
		Write(w, se.Status, se.Code, se.Message)
		return
	}
	switch {
	case errors.Is(err, objclient.ErrNoHosts):
		Write(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	case errors.Is(err, objclient.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		Write(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	case errors.Is(err, objclient.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		Write(w, http.StatusGatewayTimeout, CodeTimeout, "the object did not answer in time; the request may or may not have taken effect")
	case errors.Is(err, objclient.ErrBadRequest):
		Write(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	default:
		Write(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	}
}

// ReadBody reads r's body of at most limit bytes: past the limit it answers 413
// (payload_too_large), a body that cannot be read (shorter than its Content-Length, a
// client gone) 400; false: it answered. A body of known size is read into one buffer of
// that size.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	switch n := r.ContentLength; {
	case n > limit:
		Write(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", limit))
		return nil, false
	case n >= 0:
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			Write(w, http.StatusBadRequest, CodeBadRequest, "the body is shorter than its Content-Length or could not be read")
			return nil, false
		}
		return b, true
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		Write(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", limit))
		return nil, false
	case err != nil:
		Write(w, http.StatusBadRequest, CodeBadRequest, "the body could not be read: "+err.Error())
		return nil, false
	}
	return b, true
}
