package streamapi

import "net/http"

// Error codes: the "code" of an error body ({"error":{"code":..,"message":..}}), of a
// WebSocket error frame ({"type":"error","code":..}) and of Published.Code. A code is
// stable and names the failure; a message is for people. docs/errors.md lists every code
// with its status, where it appears and what a client should do (a test checks that
// each constant here is in that table).
//
// This package is the one place the codes of the Stream protocol are spelled; the
// gateway's HTTP error package (internal/httperr) takes the codes it shares with it from
// here, so that a failure has one code on every path.
const (
	// General codes, by HTTP status (CodeForStatus).

	CodeBadRequest       = "bad_request"        // 400: a malformed request, no finer code applies
	CodeBadName          = "bad_name"           // 400: not a valid object or stream name
	CodeBadJSON          = "bad_json"           // 400: a body or frame that is not the JSON it must be
	CodeInvalidUTF8      = "invalid_utf8"       // 400: text (JSON, a text/* body, a name, a header) that is not valid UTF-8
	CodeForbidden        = "forbidden"          // 403: refused by policy (an origin, a server hook)
	CodeNotFound         = "not_found"          // 404: no such stream, route or operation
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: the request contradicts what exists (another configuration, a fork of itself)
	CodeGone             = "gone"               // 410: deleted, or before the retained history
	CodeTooLarge         = "payload_too_large"  // 413: a body, frame, message or state over its limit
	CodeInternal         = "internal"           // 500
	// CodeUnavailable (503): the object could not be reached or did not answer (set by
	// clients: Error.Err says why).
	CodeUnavailable = "unavailable"

	// The Stream object's answers.

	CodeBadArgs       = "bad_args"        // 400: a command's or route's arguments are out of range or missing
	CodeBadBatch      = "bad_batch"       // 400: a malformed /ds/batch body
	CodeBadClient     = "bad_client"      // 400: a malformed durable client id
	CodeBadProducer   = "bad_producer"    // 400: a malformed producer, or a new epoch not starting at seq 0
	CodeStreamClosed  = "stream_closed"   // 409: the stream was closed (Durable Streams Stream-Closed)
	CodeTooManyGroups = "too_many_groups" // 409: the stream has its most consumer groups

	// The Durable Streams protocol's refusals (409 unless said).

	// CodeContentType: an append's Content-Type is not the stream's.
	CodeContentType = "content_type_mismatch"
	// CodeStreamSeq: a Stream-Seq not above the stream's last one.
	CodeStreamSeq = "stream_seq_conflict"

	// Idempotent producers (Published.Code, and the HTTP protocol's producer answers).
	// None of them stored anything.

	// CodeProducerGap: the seq is past the next one the producer may write.
	CodeProducerGap = "producer_seq_gap"
	// CodeProducerUnknown: the object keeps no state for the producer (it is new, or was
	// forgotten) and the seq is not 0: whether an earlier write of it was stored is not
	// known. A new epoch starts at seq 0.
	CodeProducerUnknown = "producer_unknown"
	// CodeStaleEpoch (403 over HTTP): a later epoch of the producer wrote already.
	CodeStaleEpoch = "stale_producer_epoch"
	// CodeDuplicateUnknown: the write was stored before, at a seq older than the object
	// remembers; it is not stored again.
	CodeDuplicateUnknown = "duplicate_seq_unknown"

	// WebSocket error frames of /v1/stream (docs/streams.md); the connection stays usable.

	CodeBadField          = "bad_field"              // a missing or mistyped field of a frame
	CodeBadFrame          = "bad_frame"              // a binary frame
	CodeBadAck            = "bad_ack"                // an ack of a seq not delivered, or of a stream not subscribed
	CodeUnknownType       = "unknown_type"           // a frame type the server does not know
	CodeUnknownCommand    = "unknown_command"        // a command the server does not know
	CodeAlreadySubscribed = "already_subscribed"     // subscribe to a stream subscribed already
	CodeNotSubscribed     = "not_subscribed"         // unsubscribe from a stream not subscribed
	CodeTooManySubs       = "too_many_subscriptions" // past the streams one connection may read
	CodePublishFailed     = "publish_failed"         // the message may or may not be stored: publish again (idempotently)
	CodeCommandFailed     = "command_failed"         // a command failed for a reason without a finer code
	CodeHistoryGone       = "history_gone"           // messages wanted were removed before delivery
)

// CodeForStatus is the general code of an HTTP status, for an answer that has no finer
// one: bad_request for a 400 and any other 4xx it does not name, internal for a 5xx it
// does not name.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusGone:
		return CodeGone
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}
