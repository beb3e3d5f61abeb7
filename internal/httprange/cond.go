package httprange

import (
	"net/http"
	"strings"
	"time"
)

// Result is what the preconditions of a request decide.
type Result int

const (
	// Proceed: every precondition holds (or there are none).
	Proceed Result = iota
	// NotModified: If-None-Match or If-Modified-Since failed. A GET or HEAD answers 304;
	// any other method 412.
	NotModified
	// PreconditionFailed: If-Match or If-Unmodified-Since failed: 412.
	PreconditionFailed
)

// Check evaluates the preconditions of a request on a representation with the given
// ETag (unquoted) and modification time, in RFC 9110 section 13.2.2's order, which is
// also S3's: If-Match, else If-Unmodified-Since; then If-None-Match, else
// If-Modified-Since. prefix is "" or S3's "X-Amz-Copy-Source-". Dates that do not parse
// are ignored, as the RFC says.
func Check(h http.Header, prefix, etag string, mod time.Time) Result {
	mod = mod.Truncate(time.Second) // HTTP dates have whole seconds
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !ETagMatch(v, etag) {
			return PreconditionFailed
		}
	} else if v := h.Get(prefix + "If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && mod.After(t) {
			return PreconditionFailed
		}
	}
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		if ETagMatch(v, etag) {
			return NotModified
		}
	} else if v := h.Get(prefix + "If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !mod.After(t) {
			return NotModified
		}
	}
	return Proceed
}

// ETagMatch reports whether an If-Match or If-None-Match value (a list of entity tags,
// quoted or not, weak or not, or "*") names etag.
func ETagMatch(list, etag string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		t = strings.Trim(t, `"`)
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// IfRange reports whether a Range applies under the request's If-Range (RFC 9110
// section 13.1.5): always without one; with one, only when it is the representation's
// ETag, compared strongly (a weak tag never matches), or an HTTP date equal to its
// modification time. Otherwise the whole representation is sent, 200.
func IfRange(h http.Header, etag string, mod time.Time) bool {
	v := strings.TrimSpace(h.Get("If-Range"))
	switch {
	case v == "":
		return true
	case strings.HasPrefix(v, `"`):
		return v == `"`+etag+`"`
	case strings.HasPrefix(v, "W/"):
		return false
	}
	t, err := http.ParseTime(v)
	return err == nil && t.Equal(mod.Truncate(time.Second))
}
