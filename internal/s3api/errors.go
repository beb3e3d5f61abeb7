package s3api

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/sigv4"
)

// s3Error is an S3 error response.
type s3Error struct {
	Status  int
	Code    string
	Message string
	// Extra headers (e.g. Content-Range on InvalidRange).
	header map[string]string
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

func newErr(status int, code, msg string) *s3Error {
	return &s3Error{Status: status, Code: code, Message: msg}
}

var (
	errMethod         = newErr(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	errNoSuchBucket   = newErr(404, "NoSuchBucket", "The specified bucket does not exist")
	errNoSuchKey      = newErr(404, "NoSuchKey", "The specified key does not exist.")
	errNoSuchUpload   = newErr(404, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.")
	errBucketExists   = newErr(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
	errBucketNotEmpty = newErr(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
	errPrecondition   = newErr(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	errBadBucketName  = newErr(400, "InvalidBucketName", "The specified bucket is not valid.")
	errKeyTooLong     = newErr(400, "KeyTooLongError", "Your key is too long")
	errBadKey         = newErr(400, "InvalidArgument", "Object key is not valid (empty, with a NUL, or with a '.' or '..' path segment).")
	errKeyNotUTF8     = newErr(400, "InvalidURI", "Couldn't parse the specified URI.") // S3's answer to a key that is not UTF-8
	errMetaNotUTF8    = newErr(400, "InvalidArgument", "A metadata header value (x-amz-meta-*, Content-Type, Content-Disposition, ...) is not valid UTF-8.")
	errInvalidPart    = newErr(400, "InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
	errPartOrder      = newErr(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	errTooSmall       = newErr(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
	errTooLarge       = newErr(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	errIncomplete     = newErr(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	errMalformedXML   = newErr(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	errMetaTooLarge   = newErr(400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.")
	errBadDigest      = newErr(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	errInvalidDigest  = newErr(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
	errMissingLength  = newErr(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
	errInternal       = newErr(500, "InternalError", "We encountered an internal error. Please try again.")
	errUnavailable    = newErr(503, "SlowDown", "Please reduce your request rate.")
)

func errNotImplemented(what string) *s3Error {
	return newErr(501, "NotImplemented", "A header or query you provided implies functionality that is not implemented: "+what+".")
}

func errInvalidArgument(msg string) *s3Error { return newErr(400, "InvalidArgument", msg) }

func errChecksum(alg string) *s3Error {
	return newErr(400, "BadDigest", "The "+alg+" you specified did not match the calculated checksum.")
}

// toS3 maps any error to an S3 error.
func toS3(err error) *s3Error {
	var se *s3Error
	if errors.As(err, &se) {
		return se
	}
	var ve *sigv4.Error
	if errors.As(err, &ve) {
		return newErr(ve.Status, ve.Code, ve.Message)
	}
	switch {
	case errors.Is(err, blob.ErrNoSuchBucket):
		return errNoSuchBucket
	case errors.Is(err, blob.ErrNoSuchKey):
		return errNoSuchKey
	case errors.Is(err, blob.ErrBucketExists):
		return errBucketExists
	case errors.Is(err, blob.ErrBucketNotEmpty):
		return errBucketNotEmpty
	case errors.Is(err, blob.ErrPrecondition):
		return errPrecondition
	case errors.Is(err, blob.ErrNoSuchUpload):
		return errNoSuchUpload
	case errors.Is(err, blob.ErrInvalidPart):
		return errInvalidPart
	case errors.Is(err, blob.ErrInvalidPartOrder):
		return errPartOrder
	case errors.Is(err, blob.ErrPartTooSmall):
		return errTooSmall
	case errors.Is(err, blob.ErrIncompleteBody), errors.Is(err, io.ErrUnexpectedEOF):
		return errIncomplete
	case errors.Is(err, blob.ErrTooLarge), errors.Is(err, blob.ErrObjectTooLarge):
		return errTooLarge
	case errors.Is(err, blob.ErrKeyNotUTF8):
		return errKeyNotUTF8
	case errors.Is(err, blob.ErrBadKey):
		return errBadKey
	case errors.Is(err, blob.ErrMetaNotUTF8):
		return errMetaNotUTF8
	case errors.Is(err, blob.ErrBadBucketName):
		return errBadBucketName
	case errors.Is(err, blob.ErrObjectChanged):
		return newErr(409, "OperationAborted", "The object was overwritten or deleted during the operation; retry.")
	case errors.Is(err, blob.ErrUploadTooSlow):
		return newErr(400, "RequestTimeout", "Your upload took too long.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newErr(400, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.")
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return errInternal
}

func (h *handler) fail(rq *request, err error) {
	e := toS3(err)
	if e == errInternal {
		h.log.Error("s3: internal error", "method", rq.Method, "path", rq.URL.Path, "err", err)
	} else {
		h.log.Debug("s3: error", "method", rq.Method, "path", rq.URL.Path, "query", rq.URL.RawQuery, "code", e.Code, "message", e.Message)
	}
	for k, v := range e.header {
		rq.w.Header().Set(k, v)
	}
	// Clients read the response only once they have sent the body: drain a reasonable
	// amount so that they see the error, and close the connection past that.
	if rq.Body != nil && rq.Body != http.NoBody {
		if n, _ := io.CopyN(io.Discard, rq.Body, 64<<20); n == 64<<20 {
			rq.w.Header().Set("Connection", "close")
		}
	}
	if rq.Method == http.MethodHead || e.Status == http.StatusNotModified {
		rq.w.WriteHeader(e.Status)
		return
	}
	rq.w.Header().Set("Content-Type", "application/xml")
	rq.w.WriteHeader(e.Status)
	// Written by hand: encoding/xml escapes quotes in text (&#34;), S3 does not, and
	// clients match on messages.
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString("<Error><Code>" + xmlText.Replace(e.Code) + "</Code><Message>" + xmlText.Replace(e.Message) + "</Message>")
	b.WriteString("<Resource>" + xmlText.Replace(rq.URL.Path) + "</Resource>")
	if rq.bucket != "" {
		b.WriteString("<BucketName>" + xmlText.Replace(rq.bucket) + "</BucketName>")
	}
	if rq.key != "" {
		b.WriteString("<Key>" + xmlText.Replace(rq.key) + "</Key>")
	}
	b.WriteString("<RequestId>" + rq.id + "</RequestId><HostId>" + rq.id + "</HostId></Error>")
	_, _ = io.WriteString(rq.w, b.String())
}

var xmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")

func (h *handler) writeXML(rq *request, status int, v any) {
	rq.w.Header().Set("Content-Type", "application/xml")
	rq.w.WriteHeader(status)
	_, _ = io.WriteString(rq.w, xml.Header)
	_ = xml.NewEncoder(rq.w).Encode(v)
}
