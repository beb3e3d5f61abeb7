// Package streamhub is what every stream protocol of a gateway shares (the WebSocket
// streams, Durable Streams over HTTP, the event streams, the subscriptions):
//
//   - Hub: the one feed per stream read here (a hub of gateway/internal/feed), whose start
//     has the stream's object create its log with the configured retention; the stream's
//     retained range as JetStream holds it; the bound of one batch sent to an object.
//   - Hooks: the server hooks of package streams (authorization, Transform), each run
//     with its panic contained and its refusal typed (*streamapi.Error, CodeForbidden).
//   - Retention: which limits a stream's log gets, by name pattern.
//
// The protocol packages get a *Hub and a *Hooks from the gateway in their config. This
// package imports the Stream contract, the typed client and the feed: never the gateway,
// a protocol package, the Stream class or the runtime.
package streamhub

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Retention limits the streams whose names match Pattern: tokens separated by "/",
// "*" matching one token and a last ">" one or more. Zero is no limit.
type Retention struct {
	Pattern  string
	MaxMsgs  int64
	MaxBytes int64
	MaxAge   time.Duration
}

// MatchPattern reports whether stream name matches a retention pattern.
func MatchPattern(pattern, name string) bool {
	p, n := strings.Split(pattern, "/"), strings.Split(name, "/")
	for i, tok := range p {
		if tok == ">" && i == len(p)-1 {
			return len(n) > i
		}
		if i >= len(n) || tok != "*" && tok != n[i] {
			return false
		}
	}
	return len(n) == len(p)
}

// Config configures a Hub.
type Config struct {
	JetStream jetstream.JetStream
	// Conn is the JetStream connection: the feeds' history reads, and its max payload
	// bounds a batch sent to an object (BatchBytes).
	Conn *nats.Conn
	// Streams configures a stream (creates its log, applies retention) before its feed
	// starts.
	Streams *streamclient.Client
	// Retention limits streams by name pattern; the first match applies.
	Retention []Retention
	// RingMsgs and RingBytes bound each feed's ring (feed.Config).
	RingMsgs, RingBytes int
	// StartTimeout bounds a feed's start.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Hub is the gateway's reading of streams: one feed per stream read here
// (gateway/internal/feed: one JetStream consumer, one ring of recent messages), shared by
// every local reader of every protocol. Each protocol registers the codecs of what it
// sends (Codec), so that a message is encoded once per gateway.
type Hub struct {
	cfg   Config
	feeds *feed.Hub
}

// New makes a hub; its feeds stop when ctx ends.
func New(ctx context.Context, cfg Config) *Hub {
	h := &Hub{cfg: cfg}
	h.feeds = feed.NewHub(ctx, feed.Config{
		JetStream: cfg.JetStream, Conn: cfg.Conn, Logger: cfg.Logger, StartTimeout: cfg.StartTimeout,
		RingMsgs: cfg.RingMsgs, RingBytes: cfg.RingBytes,
		Log: func(name string) (string, string) {
			return wire.LogStream(streamapi.ClassName, name), wire.LogSubject(streamapi.ClassName, name)
		},
		Open: h.configure,
	})
	return h
}

// Codec registers an encoding of messages (a protocol's frame or event), built once per
// message however many readers send it; see feed.Hub.Codec.
func (h *Hub) Codec(encode func(*feed.Msg) []byte) *feed.Codec { return h.feeds.Codec(encode) }

// Acquire returns name's feed, started; the caller releases it. An error is a
// *streamapi.Error.
func (h *Hub) Acquire(ctx context.Context, name string) (*feed.Feed, error) {
	f, err := h.feeds.Acquire(ctx, name)
	if err != nil {
		var se *streamapi.Error
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: err.Error()}
	}
	return f, nil
}

// Running is name's feed when one runs here, else nil (it is not acquired).
func (h *Hub) Running(name string) *feed.Feed { return h.feeds.Running(name) }

// ReadLog reads name's log from seq from up to upTo, at most max messages: from the feed's
// ring when one runs, else in batches (feed.Hub.ReadLog).
func (h *Hub) ReadLog(ctx context.Context, name string, from, upTo uint64, max int) ([]*feed.Msg, uint64, error) {
	return h.feeds.ReadLog(ctx, name, from, upTo, max)
}

// configure makes the stream object create its log and apply retention: a feed starts
// after it.
func (h *Hub) configure(ctx context.Context, name string) error {
	r := h.retention(name)
	_, err := h.cfg.Streams.Configure(ctx, name, streamapi.Config{MaxMsgs: r.MaxMsgs, MaxBytes: r.MaxBytes, MaxAgeMs: r.MaxAge.Milliseconds()})
	return err
}

// retention is the configured retention of stream name: the first matching pattern's.
func (h *Hub) retention(name string) Retention {
	for _, r := range h.cfg.Retention {
		if MatchPattern(r.Pattern, name) {
			return r
		}
	}
	return Retention{}
}

// Info reads a stream's retained range from JetStream itself, which applies retention
// limits the object does not see: first > last when it holds no message.
func (h *Hub) Info(ctx context.Context, name string) (first, last uint64, err error) {
	st, err := h.cfg.JetStream.Stream(ctx, wire.LogStream(streamapi.ClassName, name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: err.Error()}
	}
	s := st.CachedInfo().State
	if s.Msgs == 0 {
		return s.LastSeq + 1, s.LastSeq, nil
	}
	return s.FirstSeq, s.LastSeq, nil
}

// TrimmedTo tells this gateway's feed of name that the stream holds nothing before first,
// as the stream object answered a delete or a checkpoint: its ring drops what it kept of
// those messages.
func (h *Hub) TrimmedTo(name string, first uint64) {
	if f := h.feeds.Running(name); first > 0 && f != nil {
		f.Trim(first)
	}
}

// BatchBytes bounds the data of one batch sent to a stream object (appends over HTTP,
// publishes over WebSocket) to at most limit: wire.BatchBytes of the connection's max
// payload, the one rule hosts size events by.
func (h *Hub) BatchBytes(limit int) int {
	return max(min(limit, wire.BatchBytes(h.cfg.Conn.MaxPayload())), 16<<10)
}
