// Package objects is the public SDK for Holdfast objects: single-active, stateful instances,
// one per (class, name) across the whole cluster, like Cloudflare's Durable Objects.
//
// A user writes a Go type per class and registers a Class. The runtime constructs one
// instance per name on demand, hands it a State, and calls its handlers one event at a time
// (the input gate). Writes made to Storage during an event are applied at once in memory and
// committed together, atomically, when the event ends; every reply, socket message and close
// the event produced leaves only once that commit is durable (the output gate). A handler
// that panics or returns an error commits nothing.
//
// This package imports nothing else of Holdfast.
package objects

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Class declares one object class.
type Class struct {
	// Name is the class name used in holdfast.toml's class_name: one token of letters,
	// digits, '_' and '-'.
	Name string
	// New constructs the instance for one name. It must not block: load what the instance
	// needs from st.Storage(), which is already in memory.
	New func(st State) Object
}

// Object is an instance of a class. Fetch is its only mandatory handler; an object that
// takes WebSockets implements SocketHandler, one that uses the alarm implements
// AlarmHandler.
type Object interface {
	// Fetch answers an HTTP request routed to this object. The response is buffered and
	// sent once the event's writes are durable. A WebSocket upgrade request is accepted by
	// calling State.Sockets().Accept from Fetch.
	Fetch(w http.ResponseWriter, r *http.Request)
}

// SocketHandler receives events of the WebSockets accepted by the object. The sockets are
// held by a gateway, so these events reach the object even after it was evicted and
// re-activated, on whichever host owns it now.
type SocketHandler interface {
	SocketMessage(ctx context.Context, s Socket, msg Message) error
	// SocketClose is called once when the client closes, the connection drops, or its
	// gateway is lost. The socket is already removed from State.Sockets().
	SocketClose(ctx context.Context, s Socket, code int, reason string) error
}

// AlarmHandler runs when the object's alarm fires. An error (or a panic) retries it with
// exponential backoff, at most 6 times.
type AlarmHandler interface {
	Alarm(ctx context.Context, info AlarmInfo) error
}

// AlarmInfo tells an alarm handler about the attempt.
type AlarmInfo struct {
	Scheduled  time.Time
	RetryCount int
}

// Message is one WebSocket message.
type Message struct {
	Data   []byte
	Binary bool
}

// State is an instance's view of itself. It is only valid inside the instance's handlers
// (and its New); it is not safe for use from other goroutines.
type State interface {
	Class() string
	Name() string
	Storage() Storage
	Alarm() Alarm
	Sockets() Sockets
	// Var returns the deployment's [vars] entry.
	Var(name string) (string, bool)
	// Log returns the object's append-only message log.
	Log() Log
	// Namespace returns the object namespace bound as binding in holdfast.toml, or nil:
	// how one object calls another (a room calling a shared rate limiter, say), waiting
	// for the answer (Stub.Fetch) or taking it later as an event (Stub.Go).
	Namespace(binding string) Namespace
}

// Log is an object's append-only message log, numbered 1, 2, 3, ... with no gaps and no
// reuse, across restarts and moves. It lives in its own JetStream stream, so other
// processes (gateways) can read it directly, and its retention is JetStream's.
//
// Appends are committed with the event, like storage writes, and the event's replies wait
// for them (the output gate). Storage writes and appends of one event are each durable
// before the reply; they are not one atomic unit: state that must be atomic with a message
// belongs in the message's headers.
type Log interface {
	// Append adds a message and returns its seq, known at once.
	Append(data []byte, headers map[string]string) (uint64, error)
	// Info describes the log, appends of the current event included. With retention
	// configured, FirstSeq is read from JetStream at most once a second, so it may lag
	// retention by that much.
	Info() LogInfo
	// Read returns up to max committed messages from seq from on (fewer where retention or
	// Trim removed some). It reads JetStream, so it may take a round trip.
	Read(ctx context.Context, from uint64, max int) ([]LogMessage, error)
	// Trim drops every message up to and including seq upTo; numbering continues.
	Trim(upTo uint64) error
	// Configure sets the log's retention, applied with the event's commit. It also
	// creates the log's JetStream stream if nothing was appended yet, so that readers can
	// wait on an empty log.
	Configure(cfg LogConfig) error
	// Stream and Subject are the JetStream stream holding the log and its subject, for
	// readers outside the object.
	Stream() string
	Subject() string
}

// LogInfo describes a log. FirstSeq > LastSeq when it holds no message.
type LogInfo struct {
	FirstSeq, LastSeq uint64
}

// LogMessage is one message of a log.
type LogMessage struct {
	Seq     uint64
	Time    time.Time
	Data    []byte
	Headers map[string]string
}

// LogConfig is a log's retention: zero means no limit.
type LogConfig struct {
	MaxMsgs  int64
	MaxBytes int64
	MaxAge   time.Duration
}

// Namespace is one object class, reached by object name.
type Namespace interface {
	// Get returns a stub for the object called name, or an error wrapping ErrBadName.
	Get(name string) (Stub, error)
}

// Stub sends requests to one object.
type Stub interface {
	Name() string
	// Fetch sends req to the object and returns its response; the caller closes the body.
	// The calling object's event waits for the answer (nothing else runs on it meanwhile),
	// and the request leaves at once, before the caller's own writes are durable. An
	// object calling itself gets ErrSelfCall instead of waiting for ever. To go on while
	// the other object answers, use Go.
	Fetch(ctx context.Context, req *http.Request) (*http.Response, error)
	// Go sends req to the object without waiting for its answer: the calling event goes
	// on, and the object's other events run while the call is out. The answer comes back
	// as an event of the calling object's own: done runs on its event loop like any
	// handler (nothing else runs meanwhile and State may be used), with the response
	// (its body already read; closing it is optional) or the error Fetch would have
	// returned. Its writes commit like any event's, an error or panic from it undoes them,
	// and what it sends (socket messages, closes) leaves only once they are durable.
	//
	// done runs exactly once, after the calling event has ended, unless the calling
	// object stops first (its host shuts down or loses the lease): the answer is then
	// dropped with the rest of the instance's memory. An object with calls out is not
	// evicted for idleness. Answers run in the order they arrive, not the order of the
	// calls. The request leaves at once, as Fetch's does, and is not taken back if the
	// calling event fails. An object may call itself this way: the request is queued
	// behind the events already waiting. done may be nil when the answer does not matter.
	//
	// Go returns an error, and done never runs, when the call cannot start: outside the
	// object's handlers, a body over 1 MiB, or too many calls out (ErrTooManyCalls).
	Go(ctx context.Context, req *http.Request, done func(*http.Response, error) error) error
}

// Storage is the object's durable key-value store. Keys are non-empty UTF-8 strings that
// do not start with "\x00"; values are bytes. Everything is in memory while the object is
// active, so reads are immediate; limits bound one value and the whole store.
type Storage interface {
	Get(key string) ([]byte, bool)
	Put(key string, value []byte) error
	Delete(key string) error
	// List returns the entries whose key starts with prefix, in key order, at most limit
	// of them when limit > 0, starting after the key startAfter when it is not empty.
	List(prefix, startAfter string, limit int) []Entry
	// Bytes is the store's current size: keys plus values.
	Bytes() int
}

// Entry is one key and value.
type Entry struct {
	Key   string
	Value []byte
}

// Alarm is the object's single alarm. It fires at least once at or after its time, also
// when the object is not active and when its host is lost.
type Alarm interface {
	Get() (time.Time, bool)
	Set(at time.Time) error
	Delete() error
}

// Sockets are the WebSockets accepted by this object, held open by gateways.
type Sockets interface {
	// Accept accepts the WebSocket upgrade request r (only from Fetch). Tags select
	// sockets in List; the attachment is a small value kept with the socket across
	// evictions and moves.
	Accept(w http.ResponseWriter, r *http.Request, opts SocketOptions) (Socket, error)
	// List returns the open sockets that carry tag, or all of them for "".
	List(tag string) []Socket
	Get(id string) (Socket, bool)
	// Broadcast sends one text message to every socket carrying tag ("" for all) except
	// the ids in except, with one publish per gateway rather than per socket. A text
	// message must be valid UTF-8 (RFC 6455): else ErrInvalidUTF8, and nothing is sent.
	Broadcast(tag string, data []byte, except ...string) error
}

// SocketOptions describe an accepted socket. Tags are UTF-8 (else ErrInvalidUTF8); the
// attachment is any bytes.
type SocketOptions struct {
	Tags       []string
	Attachment []byte
}

// Socket is one WebSocket held by a gateway.
type Socket interface {
	ID() string
	Tags() []string
	Attachment() []byte
	// SetAttachment replaces the attachment; it is committed like a storage write.
	SetAttachment(b []byte) error
	// Send queues a text message, which must be valid UTF-8 (RFC 6455; else
	// ErrInvalidUTF8: strict clients fail the connection on one that is not); SendBinary
	// a binary one, any bytes. They leave after the event's commit, in order.
	Send(data []byte) error
	SendBinary(data []byte) error
	// Close closes the socket with a WebSocket close code and reason (UTF-8, like a text
	// message).
	Close(code int, reason string) error
}

// Errors returned by the State methods.
var (
	ErrBadKey        = errors.New("objects: bad storage key")
	ErrValueTooLarge = errors.New("objects: value too large")
	ErrStorageFull   = errors.New("objects: object storage is full")
	ErrNotUpgrade    = errors.New("objects: not a WebSocket upgrade request")
	ErrTooManySocket = errors.New("objects: too many sockets on this object")
	ErrSocketClosed  = errors.New("objects: socket is closed")
	ErrBadName       = errors.New("objects: bad object name")
	ErrSelfCall      = errors.New("objects: an object cannot call itself")
	ErrTooManyCalls  = errors.New("objects: too many calls out from this object")
	ErrInvalidUTF8   = errors.New("objects: text is not valid UTF-8")
)
