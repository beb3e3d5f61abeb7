// Package conns is the gateway's client core: every long-lived client connection — a
// stream WebSocket, an object socket, an EventSource, a Durable Streams SSE response — is
// a Conn, one transport-agnostic outgoing side with one byte-bounded queue, one coalescing
// writer and one slow-consumer policy, over a Transport that puts messages on its wire
// (WebSocket frames, chunks of a text/event-stream body), as centrifugal/centrifuge does.
//
//   - Accepting: WebSockets are accepted by melody (AcceptWebSocket), which upgrades them
//     and runs each session's read pump, pings and close handshake; an HTTP/1.1 event
//     stream is taken from net/http once its headers are set (AcceptSSE). Either way the
//     handler returns at once, and net/http's connection, request and buffers are freed:
//     an idle connection holds its reader (and melody's ping pump) and a few KB.
//   - Counting: every connection is admitted and counted here, by kind (Hub.Open), at one
//     place where limits (per client address, per kind) belong.
//   - Writing: a message is framed once into the connection's queue; one flusher goroutine
//     per gateway writes every connection that has something queued without blocking, so
//     a broadcast to many connections costs one wake-up, and what piles up while it writes
//     leaves in one syscall. A connection that cannot take more now is finished by a
//     goroutine of its own under a write deadline.
//   - Slow consumers: a queue that would pass its bound (Config.QueueBytes, 1 MiB by
//     default) drops what it holds and closes the connection, a WebSocket with
//     CloseSlowConsumer (4008), an event stream by ending its body: a stream client
//     resumes from its last ack, an EventSource from its Last-Event-ID.
//   - Draining: Hub.Drain ends every connection of a gateway about to stop, a WebSocket
//     with CloseServiceRestart (1012: reconnect now, elsewhere), an event stream by ending
//     its body, and tells long-polls through Hub.Draining (drain.go).
//   - Text: every outgoing WebSocket text frame is framed by one function (appendWSFrame),
//     the one place a UTF-8 check belongs should anything unchecked ever reach it. What
//     the gateway sends is valid already: a stream's frames are built from text made valid
//     once per message (streamapi.ValidText, in the feed's codecs), objects' text sends are
//     refused unless valid, and control frames are encoded by encoding/json.
package conns

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// CloseSlowConsumer closes a WebSocket whose outgoing queue overflowed: the client did
// not read fast enough. It resumes from its last ack (streams) or reconnects.
const CloseSlowConsumer = 4008

// SlowConsumerReason is the close reason of a slow consumer.
const SlowConsumerReason = "slow consumer: outgoing queue full; resume from your last ack"

// Defaults of Config.
const (
	DefaultQueueBytes   = 1 << 20
	DefaultWriteTimeout = 10 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	// closeWait bounds the last write before a connection closes.
	closeWait = time.Second
)

// Kind is what a connection serves.
type Kind int

// Kinds of connections.
const (
	StreamSocket Kind = iota // /v1/stream WebSocket, durable-stream's /stream
	ObjectSocket             // a WebSocket held for an object
	EventSource              // a browser EventSource, sse-cluster's channels
	StreamSSE                // a Durable Streams live=sse response
	numKinds
)

var kindNames = [numKinds]string{"stream socket", "object socket", "event source", "stream sse"}

func (k Kind) String() string { return kindNames[k] }

// Config configures a Hub.
type Config struct {
	// QueueBytes bounds each connection's outgoing queue (DefaultQueueBytes).
	QueueBytes int
	// WriteTimeout bounds a write a client does not take (DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Heartbeat is the longest silence on an event stream: a comment line is sent then
	// (DefaultHeartbeat).
	Heartbeat time.Duration
	Logger    *slog.Logger
	// Metrics counts the messages sent and the slow consumers, by transport (nil: counted,
	// exported nowhere).
	Metrics *metrics.Gateway
}

// Hub holds a gateway's connections: their counts, the flusher that writes them and the
// heartbeat wheel of its event streams.
type Hub struct {
	cfg     Config
	ctx     context.Context
	flusher *flusher
	wheel   *wheel
	open    [numKinds]atomic.Int64
	slow    atomic.Int64
	sent    [numKinds]prometheus.Counter // messages queued, for the metrics
	slowBy  [numKinds]prometheus.Counter // slow consumers closed
	live    live                         // the connections not ended, for Drain (drain.go)
}

// Transport is kind's transport label, as the presence and the metrics name it.
func (k Kind) Transport() string {
	switch k {
	case StreamSocket:
		return wire.ConnStreamSocket
	case ObjectSocket:
		return wire.ConnObjectSocket
	}
	return wire.ConnEventSource
}

// NewHub starts a hub; its flusher runs until ctx ends.
func NewHub(ctx context.Context, cfg Config) *Hub {
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewGateway(nil, nil)
	}
	h := &Hub{cfg: cfg, ctx: ctx, flusher: newFlusher()}
	for k := range numKinds {
		h.sent[k] = cfg.Metrics.MessagesOut.WithLabelValues(k.Transport())
		h.slowBy[k] = cfg.Metrics.SlowConsumers.WithLabelValues(k.Transport())
	}
	h.wheel = newWheel(cfg.Heartbeat)
	h.live.init()
	go h.flusher.run(ctx.Done())
	return h
}

// Open is the number of open connections of kind.
func (h *Hub) Open(kind Kind) int64 { return h.open[kind].Load() }

// SlowClosed is the number of connections closed as slow consumers.
func (h *Hub) SlowClosed() int64 { return h.slow.Load() }

// admit counts a new connection of kind: every connection of the gateway comes through
// here before anything of it is kept.
func (h *Hub) admit(kind Kind) {
	h.open[kind].Add(1)
}
