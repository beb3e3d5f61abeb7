package streamapi

import (
	"bytes"
	"encoding/json"
	"mime"
	"strings"
	"unicode/utf8"
)

// What a stream stores and how readers tell messages from the records around them.

// ValidJSON reports whether b is one JSON text as RFC 8259 defines it: json.Valid's
// syntax, and valid UTF-8 throughout. json.Valid alone lets invalid UTF-8 through inside
// strings, and a strict reader (a browser's WebSocket, Node's ws) fails the whole
// connection on the text frame that carries it (RFC 6455 section 8.1), so one such
// message stored would cut every strict subscriber off at it for good.
func ValidJSON(b []byte) bool { return utf8.Valid(b) && json.Valid(b) }

// ValidText is b when it is valid UTF-8, else a copy with each run of invalid bytes
// replaced by one U+FFFD (bytes.ToValidUTF8): what a reader shows of a record stored before
// writes were checked (CheckData), so that no reader passes invalid UTF-8 on. In JSON the
// bad bytes can only be inside strings, so the result is still the same JSON document.
func ValidText(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}

// IsMessage reports whether a stored record of a stream's log is a message: one with
// data. Every reader applies this one rule (WebSocket subscribers, consumer groups,
// durable-stream clients, Durable Streams reads, long-polls, SSE and EventSource), so that
// every protocol shows one history. A record without data is a marker: the Durable
// Streams close of a stream without a final body (Stream-Closed on an empty POST or PUT),
// or the create record of a stream created empty by an earlier version (a create stores
// a record only when it carries data or closes). Readers step over a marker's seq without
// a gap: seqs are the log's, never renumbered.
func IsMessage(data []byte) bool { return len(data) > 0 }

// CheckData validates the data of a write to a stream of the media type contentType (a
// lower-case type/subtype without parameters): a JSON stream holds JSON text, a text/*
// stream UTF-8 text (its SSE readers receive it as text), anything else bytes. The error
// has CodeInvalidUTF8 or CodeBadJSON. No data (a create without a body) is fine.
func CheckData(contentType string, data []byte) *Error {
	switch {
	case len(data) == 0:
	case contentType == "application/json":
		if !utf8.Valid(data) {
			return Errorf(CodeInvalidUTF8, "the body is not valid UTF-8: a JSON stream holds JSON text (RFC 8259)")
		}
		if !json.Valid(data) {
			return Errorf(CodeBadJSON, "the body is not valid JSON")
		}
	case strings.HasPrefix(contentType, "text/"):
		if !utf8.Valid(data) {
			return Errorf(CodeInvalidUTF8, "the body is not valid UTF-8: a %s stream holds UTF-8 text", contentType)
		}
	}
	return nil
}

// MediaType is a Content-Type's lower-cased media type, as a stream keeps it (DSMeta,
// CheckData); "" when malformed.
func MediaType(ct string) string {
	if plainMediaType(ct) {
		return ct // the usual case, already in the form ParseMediaType would give
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// plainMediaType reports whether ct is type/subtype in lower case without parameters:
// letters, digits and the token punctuation that appears in registered types.
func plainMediaType(ct string) bool {
	slash := -1
	for i := 0; i < len(ct); i++ {
		c := ct[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '+':
		case c == '/' && slash < 0:
			slash = i
		default:
			return false
		}
	}
	return slash > 0 && slash < len(ct)-1
}

// IsJSON reports whether ct is JSON: the stream's messages are JSON values.
func IsJSON(ct string) bool { return MediaType(ct) == "application/json" }
