// Package wire owns the NATS protocol between gateways and object hosts: subject names, KV
// bucket names, the headers of a request to an object and of its reply, and the commands an
// object sends back to a gateway's sockets. Gateways and hosts both import it; neither
// imports the other.
package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects, streams and buckets.
const (
	// ActivateSubjectPrefix + class is the queue subject for a request to an object of that
	// class that has no known owner; any host serving the class may take it.
	ActivateSubjectPrefix = "hf.act."
	// ActivateQueue is the queue group hosts join on activation subjects.
	ActivateQueue = "hf-hosts"
	// HostSubjectPrefix + host id reaches one host.
	HostSubjectPrefix = "hf.host."
	// GatewaySubjectPrefix + gateway id reaches one gateway's sockets.
	GatewaySubjectPrefix = "hf.gw."
	// SSEChannelsSubject is answered by every gateway with its sse-cluster channels (a
	// JSON SSEChannels), for the cluster-wide GET /status and POST /channel.
	SSEChannelsSubject = "hf.sse.channels"

	// LeaseBucket maps "class.name" to the host that owns the object (JSON Lease). The
	// entry has no TTL of its own: it is valid while the host lease it names lives.
	LeaseBucket = "hf_leases"
	// HostBucket holds one TTL'd key per live object host: its host lease (JSON HostLease),
	// renewed by the host, which is also its announcement.
	HostBucket = "hf_hosts"
	// GatewayBucket holds one TTL'd presence key per live gateway (JSON GatewayPresence).
	GatewayBucket = "hf_gateways"
	// AlarmBucket holds "class.name" -> alarm time (unix ms) for objects with an alarm: a
	// hint that may hold extra entries, never miss one.
	AlarmBucket = "hf_alarms"

	// ObjectStream stores every object's log under ObjectSubjectPrefix + class + "." +
	// name-as-subject.
	ObjectStream        = "HF_OBJECTS"
	ObjectSubjectPrefix = "hf.obj."

	// LogStreamPrefix + a hash of the object's key names the JetStream stream holding one
	// object's message log; its subject is LogSubjectPrefix + class + "." + name.
	LogStreamPrefix  = "HFL_"
	LogSubjectPrefix = "hf.log."
)

// SSEChannels is one gateway's answer on SSEChannelsSubject: its id and the number of
// event-stream clients per sse-cluster channel.
type SSEChannels struct {
	Gateway  string         `json:"gateway"`
	Channels map[string]int `json:"channels"`
}

// Headers of requests and replies. Client headers with these prefixes are dropped at the
// gateway, so a client cannot forge them.
const (
	HdrOp      = "Hf-Op"
	HdrClass   = "Hf-Class"
	HdrName    = "Hf-Name"
	HdrMethod  = "Hf-Method"
	HdrURL     = "Hf-Url"
	HdrRemote  = "Hf-Remote"
	HdrGateway = "Hf-Gateway"
	HdrSocket  = "Hf-Socket"
	HdrSockets = "Hf-Sockets"
	HdrBinary  = "Hf-Binary"
	HdrCode    = "Hf-Code"
	HdrReason  = "Hf-Reason"
	HdrStatus  = "Hf-Status"
	HdrAccept  = "Hf-Accept"
	HdrError   = "Hf-Error"
	HdrOwner   = "Hf-Owner"
	HdrMessage = "Hf-Message"
	HdrHost    = "Hf-Host"
	// HdrSeq numbers a socket's messages from 1, so that an object drops a message a
	// gateway resends after a failover.
	HdrSeq = "Hf-Seq"
)

// Ops: what a request to an object carries.
const (
	OpFetch       = "fetch"
	OpSocketMsg   = "ws-msg"
	OpSocketClose = "ws-close"
	OpAlarm       = "alarm"
)

// Gateway ops: what an object asks of a gateway.
const (
	GwOpSend  = "send"
	GwOpClose = "close"
)

// Error codes in HdrError of a reply that did not reach the object's code.
const (
	// ErrNotOwner: the host does not own the object; HdrOwner names the host that does
	// when known. The gateway retries there.
	ErrNotOwner = "not-owner"
	// ErrUnavailable: the object could not be activated or lost its lease mid-request.
	// Whether the request's writes landed is unknown only when HdrMessage says so.
	ErrUnavailable = "unavailable"
	// ErrCommitFailed: the object ran the request but its writes could not be committed
	// (the host lost the lease, or JetStream failed). Not safe to retry blindly.
	ErrCommitFailed = "commit-failed"
	// ErrNoClass: the host does not serve that class.
	ErrNoClass = "no-class"
	// ErrBadRequest: the request was malformed.
	ErrBadRequest = "bad-request"
	// ErrOverloaded: the object's queue is full.
	ErrOverloaded = "overloaded"
)

// Lease is the value of a LeaseBucket key: the object is owned by Host for as long as
// Host's host lease lives with this Epoch. An entry without an epoch is a lease written by
// an older Holdfast, valid while its own TTL runs.
type Lease struct {
	Host  string `json:"host"`
	Epoch string `json:"epoch,omitempty"`
}

// HostLease is the value of a HostBucket key: a live object host and the epoch of its
// lease, refreshed at every renewal. A host whose lease lapsed comes back with a new
// epoch, so object entries naming the old one are free.
type HostLease struct {
	ID      string    `json:"id"`
	Epoch   string    `json:"epoch"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started"`
	Classes []string  `json:"classes,omitempty"`
	// Active is the number of objects active on the host at the last renewal.
	Active int `json:"active"`
}

// GatewayPresence is the value of a GatewayBucket key, refreshed at every renewal.
type GatewayPresence struct {
	ID      string    `json:"id"`
	Address string    `json:"address,omitempty"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started"`
	// Connections counts open client connections by transport (ConnObjectSocket, ...).
	Connections map[string]int `json:"connections"`
}

// Transports in GatewayPresence.Connections.
const (
	ConnObjectSocket = "object_ws"    // WebSockets to objects
	ConnStreamSocket = "stream_ws"    // /v1/stream and durable-stream WebSockets
	ConnEventSource  = "event_stream" // EventSource / SSE responses
	ConnLongPoll     = "long_poll"    // Durable Streams long-poll reads
	ConnHTTP         = "http"         // other requests in flight
)

// ActivateSubject is the activation queue subject of class.
func ActivateSubject(class string) string { return ActivateSubjectPrefix + class }

// HostSubject is the request subject of host id.
func HostSubject(id string) string { return HostSubjectPrefix + id }

// GatewaySubject is the command subject of gateway id.
func GatewaySubject(id string) string { return GatewaySubjectPrefix + id }

// reserved reports whether an HTTP header name is one of ours (or NATS's).
func reserved(name string) bool {
	return len(name) >= 3 && (strings.EqualFold(name[:3], "Hf-") ||
		len(name) >= 5 && strings.EqualFold(name[:5], "Nats-"))
}

// EncodeRequest turns an HTTP request to object (class, name) into a NATS message for
// subject. The body is read whole: callers bound it first.
func EncodeRequest(subject, class, name string, r *http.Request, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, vs := range r.Header {
		if reserved(k) {
			continue
		}
		m.Header[k] = vs
	}
	m.Header.Set(HdrOp, OpFetch)
	m.Header.Set(HdrClass, class)
	m.Header.Set(HdrName, name)
	m.Header.Set(HdrMethod, r.Method)
	m.Header.Set(HdrURL, r.URL.RequestURI())
	if r.Host != "" {
		m.Header.Set("Host", r.Host)
	}
	if r.RemoteAddr != "" {
		m.Header.Set(HdrRemote, r.RemoteAddr)
	}
	m.Data = body
	return m
}

// DecodeRequest rebuilds the HTTP request a fetch message carries.
func DecodeRequest(m *nats.Msg) (*http.Request, error) {
	method := m.Header.Get(HdrMethod)
	uri := m.Header.Get(HdrURL)
	if method == "" || uri == "" {
		return nil, fmt.Errorf("wire: fetch without %s or %s", HdrMethod, HdrURL)
	}
	r, err := http.NewRequest(method, "http://object"+uri, bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	for k, vs := range m.Header {
		if reserved(k) {
			continue
		}
		r.Header[k] = vs
	}
	r.Host = m.Header.Get("Host")
	r.Header.Del("Host")
	r.RemoteAddr = m.Header.Get(HdrRemote)
	r.ContentLength = int64(len(m.Data))
	r.RequestURI = uri
	return r, nil
}

// EncodeResponse builds the reply carrying an object's HTTP response.
func EncodeResponse(status int, h http.Header, body []byte) *nats.Msg {
	m := nats.NewMsg("")
	for k, vs := range h {
		if reserved(k) {
			continue
		}
		m.Header[k] = vs
	}
	m.Header.Set(HdrStatus, strconv.Itoa(status))
	m.Data = body
	return m
}

// ErrorReply builds a reply that did not reach the object's code.
func ErrorReply(code, msg string) *nats.Msg {
	m := nats.NewMsg("")
	m.Header.Set(HdrError, code)
	if msg != "" {
		m.Header.Set(HdrMessage, msg)
	}
	return m
}

// Status is the HTTP status of a reply, or 0 for an error reply.
func Status(m *nats.Msg) int {
	s, _ := strconv.Atoi(m.Header.Get(HdrStatus))
	return s
}

// WriteResponse copies an object's reply onto w.
func WriteResponse(w http.ResponseWriter, m *nats.Msg) {
	h := w.Header()
	for k, vs := range m.Header {
		if reserved(k) {
			continue
		}
		h[k] = vs
	}
	st := Status(m)
	if st == 0 {
		st = http.StatusOK
	}
	h.Set("Content-Length", strconv.Itoa(len(m.Data)))
	w.WriteHeader(st)
	_, _ = w.Write(m.Data)
}

// ToHTTPResponse turns a reply into an *http.Response for a function's Stub.Fetch.
func ToHTTPResponse(m *nats.Msg, req *http.Request) *http.Response {
	h := http.Header{}
	for k, vs := range m.Header {
		if !reserved(k) {
			h[k] = vs
		}
	}
	st := Status(m)
	if st == 0 {
		st = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", st, http.StatusText(st)), StatusCode: st,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(m.Data)),
		ContentLength: int64(len(m.Data)), Request: req,
	}
}

// LogStream is the JetStream stream of the message log of object (class, name). Stream
// names cannot hold '.' or '/', so the key is hashed; the stream's metadata keeps it.
func LogStream(class, name string) string {
	sum := sha256.Sum256([]byte(class + "." + name))
	return LogStreamPrefix + hex.EncodeToString(sum[:16])
}

// LogSubject is the subject of the message log of object (class, name).
func LogSubject(class, name string) string {
	return LogSubjectPrefix + class + "." + strings.ReplaceAll(name, "/", ".")
}

// The sizes an object's writes may take, from the NATS server's max_payload (1 MiB by
// default on a standalone nats-server), the one rule both sides follow: a host caps what
// one event may write at MaxEventBytes and fills a record up to half the room before it
// takes another event, so a record never outgrows one NATS message; a gateway sends an
// object batches (publishes, appends) of at most BatchBytes of data, so that a batch's
// event stays inside MaxEventBytes with room for each item's own overhead.

// PayloadRoom is what of a message of maxPayload bytes a record, snapshot or reply may
// fill: 64 KiB go to headers and framing; at least 64 KiB.
func PayloadRoom(maxPayload int64) int { return max(int(maxPayload)-64<<10, 64<<10) }

// MaxEventBytes bounds what one object event may write: a quarter of the room.
func MaxEventBytes(maxPayload int64) int { return PayloadRoom(maxPayload) / 4 }

// BatchBytes bounds the data of one batch a gateway sends an object: half of an event.
func BatchBytes(maxPayload int64) int { return MaxEventBytes(maxPayload) / 2 }
