// Package sigv4 owns AWS Signature Version 4 verification on the server side for the S3
// endpoint: the Authorization header and presigned query forms, the canonical request
// exactly as AWS builds it, the x-amz-content-sha256 payload modes (a hex digest,
// UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER],
// STREAMING-UNSIGNED-PAYLOAD-TRAILER), the aws-chunked decoder that checks every chunk
// signature and the signed trailer while streaming, and the checksum algorithms S3 clients
// send (CRC32, CRC32C, CRC64NVME, SHA1, SHA256).
//
// Nothing is buffered whole: bodies are verified as they are read, and a failure surfaces
// as an *Error from Read, at the latest at EOF, so a store that commits only after EOF
// stores nothing unverified.
package sigv4

import (
	"fmt"
	"net/http"
)

// Error is a verification failure carrying the S3 error code a client understands.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func errf(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// Errors that are always the same.
var (
	ErrMissingAuth = &Error{Code: "AccessDenied", Message: "Access Denied: request is not signed", Status: http.StatusForbidden}
	ErrSignature   = &Error{Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.", Status: http.StatusForbidden}
	ErrAccessKey   = &Error{Code: "InvalidAccessKeyId", Message: "The AWS Access Key Id you provided does not exist in our records.", Status: http.StatusForbidden}
	ErrSkew        = &Error{Code: "RequestTimeTooSkewed", Message: "The difference between the request time and the server's time is too large.", Status: http.StatusForbidden}
	ErrExpired     = &Error{Code: "AccessDenied", Message: "Request has expired", Status: http.StatusForbidden}
	ErrContentSHA  = &Error{Code: "XAmzContentSHA256Mismatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed.", Status: http.StatusBadRequest}
	ErrIncomplete  = &Error{Code: "IncompleteBody", Message: "You did not provide the number of bytes specified by the Content-Length HTTP header.", Status: http.StatusBadRequest}
	ErrChunkFormat = &Error{Code: "InvalidRequest", Message: "Malformed aws-chunked body.", Status: http.StatusBadRequest}
)
