// Package httperr owns the one JSON error shape every Holdfast HTTP endpoint answers with:
//
//	{"error":{"code":"bad_name","message":"..."}}
package httperr

import (
	"encoding/json"
	"net/http"
)

// Codes used across Holdfast. A code is stable; a message is for people.
const (
	CodeBadRequest     = "bad_request"
	CodeBadName        = "bad_name"
	CodeNotFound       = "not_found"
	CodeMethod         = "method_not_allowed"
	CodeTooLarge       = "body_too_large"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeUnavailable    = "unavailable"
	CodeTimeout        = "timeout"
	CodeInternal       = "internal"
	CodeObjectError    = "object_error"
	CodeTooManyRequest = "too_many_requests"
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
