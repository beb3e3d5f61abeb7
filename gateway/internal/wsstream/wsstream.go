// Package wsstream serves durable streams over WebSocket: the /v1/stream protocol (one
// connection subscribing to streams from any seq, publishing in batches, with windows,
// acks, durable clients and their redelivery, consumer groups and commands; docs/streams.md)
// and, over the same connections, durable-stream's drop-in protocol at /stream/<subject>
// (compat.go).
//
// A connection is a client connection of the gateway's core (gateway/internal/conns: its
// byte-bounded queue, the one writer, the slow-consumer policy), accepted by melody; its
// subscribers read the stream's feed (gateway/internal/streamhub, gateway/internal/feed)
// at their own positions; everything it asks of a stream goes through the typed client of
// the Stream object (gateway/internal/streamclient).
//
// It must not import the gateway, another protocol package (dshttp, sse, dssubs), the
// Stream class or the runtime: the gateway hands it what it needs in Config.
package wsstream

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/olahol/melody"
)

// Config configures a Server; the gateway fills it from its Options.
type Config struct {
	// Gateway is this gateway's id (getServerInfo's node).
	Gateway string
	// MaxMessage bounds one client frame: a larger one, up to 16 times it, is refused
	// with an error frame, and past that the connection closes (1009).
	MaxMessage     int64
	RequestTimeout time.Duration
	Logger         *slog.Logger
	Conns          *conns.Hub           // the client core
	Streams        *streamclient.Client // the Stream objects
	Hub            *streamhub.Hub       // the feeds
	Hooks          *streamhub.Hooks     // the server hooks
	Metrics        *metrics.Gateway     // messages in, publish→ack, publish→deliver
	// CheckOrigin reports whether an upgrade's Origin may open a WebSocket (the gateway's
	// policy, Options.AllowedOrigins).
	CheckOrigin func(*http.Request) bool
}

// Server is a gateway's WebSocket streams.
type Server struct {
	opts     Config
	id       string
	ctx      context.Context
	log      *slog.Logger
	started  time.Time
	conns    *conns.Hub
	sc       *streamclient.Client
	streams  *streamhub.Hub
	hooks    *streamhub.Hooks
	metrics  *metrics.Gateway
	codecs   codecs
	streamWS *melody.Melody // /v1/stream connections'
	compatWS *melody.Melody // durable-stream's /stream connections'
}

// testHookNew, when a test sets it (export_test.go), is told of every Server made.
var testHookNew func(*Server)

// New is the WebSocket streams of a gateway; its connections close with 1001 when ctx ends.
func New(ctx context.Context, cfg Config) *Server {
	g := &Server{opts: cfg, id: cfg.Gateway, ctx: ctx, log: cfg.Logger, started: time.Now(),
		conns: cfg.Conns, sc: cfg.Streams, streams: cfg.Hub, hooks: cfg.Hooks, metrics: cfg.Metrics, codecs: newCodecs(cfg.Hub, cfg.Hooks),
		// A frame over 16 times the limit closes a stream connection (1009); a larger one is
		// refused with an error frame. durable-stream's protocol has no error frame.
		streamWS: conns.NewMelody(max(16*cfg.MaxMessage, 1<<20)),
		compatWS: conns.NewMelody(max(cfg.MaxMessage, 1<<10)),
	}
	if testHookNew != nil {
		testHookNew(g)
	}
	return g
}
