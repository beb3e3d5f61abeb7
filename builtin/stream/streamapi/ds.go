package streamapi

import (
	"net/url"
	"strconv"
)

// The Durable Streams protocol's routes (/ds...). Offsets are log seqs; a fork's offsets
// continue its source's.

// DSMeta is a stream's configuration.
type DSMeta struct {
	ContentType string `json:"contentType"`
	TTL         *int64 `json:"ttl,omitempty"`       // sliding, in seconds
	ExpiresAt   string `json:"expiresAt,omitempty"` // RFC 3339, as given
	CreateSeq   uint64 `json:"createSeq"`
	// NoRecord: the create stored no record in the log (it had no data and did not
	// close), so CreateSeq is the seq of the stream's first append. Streams created before
	// this field have a create record at CreateSeq.
	NoRecord bool `json:"noRecord,omitempty"`
	// Touched is the last read or write (Unix ms), for the sliding TTL.
	Touched int64 `json:"touched,omitempty"`
	// Fork is set on a fork: its offsets continue its source's.
	Fork *DSFork `json:"fork,omitempty"`
	// Forks names the streams forked from this one (the reference count).
	Forks []string `json:"forks,omitempty"`
	// Deleted marks a soft-deleted stream: gone for clients, kept for its forks' reads.
	Deleted bool `json:"deleted,omitempty"`
}

// Producer names an idempotent producer's write: the Durable Streams protocol's
// Producer-Id, Producer-Epoch and Producer-Seq, and the same fields of a WebSocket publish.
type Producer struct {
	ID    string `json:"id"`
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// DSFork is a fork's origin.
type DSFork struct {
	Source string `json:"source"`
	// Offset is the fork point: offsets below it are the source's.
	Offset uint64 `json:"offset"`
	// ReqOffset and ReqSub are the request's Stream-Fork-Offset and Stream-Fork-Sub-Offset,
	// compared when the fork is created again.
	ReqOffset string `json:"reqOffset,omitempty"`
	ReqSub    uint64 `json:"reqSub,omitempty"`
}

// DSCreate is a PUT /ds body.
type DSCreate struct {
	ContentType string  `json:"contentType"`
	TTL         *int64  `json:"ttl,omitempty"`
	ExpiresAt   string  `json:"expiresAt,omitempty"`
	Closed      bool    `json:"closed,omitempty"`
	Data        []byte  `json:"data,omitempty"`
	Batch       int     `json:"batch,omitempty"`
	Fork        *DSFork `json:"fork,omitempty"`
}

// DSAppend is a POST /ds body. Empty Data is a close-only request (Closed is then set).
type DSAppend struct {
	ContentType string    `json:"contentType,omitempty"`
	Data        []byte    `json:"data,omitempty"`
	Batch       int       `json:"batch,omitempty"`
	Closed      bool      `json:"closed,omitempty"`
	Producer    *Producer `json:"producer,omitempty"`
	StreamSeq   string    `json:"streamSeq,omitempty"`
}

// DSResult answers the /ds routes; the gateway turns it into headers, and an answer of 400
// or more into the error shape with Reason as its code.
type DSResult struct {
	Next uint64 `json:"next"`
	// Reason is the code (Code*) of an outcome of 400 or more: CodeNotFound, CodeGone,
	// CodeConflict, CodeStreamClosed, CodeContentType, CodeStreamSeq, CodeProducerGap,
	// CodeProducerUnknown, CodeStaleEpoch.
	Reason        string  `json:"reason,omitempty"`
	Closed        bool    `json:"closed,omitempty"`
	Meta          *DSMeta `json:"meta,omitempty"`
	ProducerEpoch *uint64 `json:"producerEpoch,omitempty"`
	ProducerSeq   *uint64 `json:"producerSeq,omitempty"`
	ExpectedSeq   *uint64 `json:"expectedSeq,omitempty"`
	ReceivedSeq   *uint64 `json:"receivedSeq,omitempty"`
	Message       string  `json:"message,omitempty"`
}

// DSAnswer is one append's answer in a POST /ds/batch reply: its status and result, or,
// when Code is set, a refusal in the shape of an error body (code and message).
type DSAnswer struct {
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	DSResult
}

// ErrorCode is the code of an answer of 400 or more: the refusal's Code, else the
// outcome's Reason, else the status's general code.
func (a DSAnswer) ErrorCode() string {
	switch {
	case a.Code != "":
		return a.Code
	case a.Reason != "":
		return a.Reason
	}
	return CodeForStatus(a.Status)
}

// DSMsg is one stored record in a read.
type DSMsg struct {
	Seq   uint64 `json:"seq"`
	Data  []byte `json:"data"`
	Batch int    `json:"batch,omitempty"`
}

// DSRead is a read of a stream: its configuration, tail and closure, and records. The
// object's answer to GET /ds/read holds no records (Msgs is empty and Upto the offset
// asked for, at or after the stream's first own one): readers read the records from the
// stream's log themselves, as gateways do straight from JetStream (the log's headers:
// log.go), and fill Msgs.
type DSRead struct {
	Meta   DSMeta  `json:"meta"`
	Next   uint64  `json:"next"` // the tail: last seq + 1
	Closed bool    `json:"closed,omitempty"`
	Msgs   []DSMsg `json:"msgs"`
	// Upto is the seq after the last record scanned (Next when the read reached the tail).
	Upto uint64 `json:"upto"`
}

// DSReadQuery is the query of GET /ds/read.
type DSReadQuery struct {
	From uint64 // the first offset wanted
	// Touch restarts a sliding TTL; Implicit reads a stream never created over HTTP (one
	// used only over WebSocket or EventSource) as JSON messages from seq 1; Internal reads
	// a soft-deleted source for its forks.
	Touch, Implicit, Internal bool
}

// Encode is the query string.
func (q DSReadQuery) Encode() string {
	v := url.Values{"from": {strconv.FormatUint(q.From, 10)}}
	flag := func(k string, b bool) {
		if b {
			v.Set(k, "1")
		}
	}
	flag("touch", q.Touch)
	flag("implicit", q.Implicit)
	flag("internal", q.Internal)
	return v.Encode()
}

// ParseDSReadQuery reads a query Encode wrote; malformed numbers read as 0.
func ParseDSReadQuery(v url.Values) DSReadQuery {
	q := DSReadQuery{Touch: v.Get("touch") != "", Implicit: v.Get("implicit") != "", Internal: v.Get("internal") != ""}
	q.From, _ = strconv.ParseUint(v.Get("from"), 10, 64)
	return q
}

// DSRef adds or removes a fork of this stream (POST /ds/ref).
type DSRef struct {
	Fork   string `json:"fork"`
	Remove bool   `json:"remove,omitempty"`
}

// DSRefResult answers /ds/ref. Dropped: removing the last fork dropped this soft-deleted
// stream, and Source (when it is itself a fork) is to be released in turn.
type DSRefResult struct {
	Forks   int    `json:"forks"`
	Dropped bool   `json:"dropped,omitempty"`
	Source  string `json:"source,omitempty"`
}
