// Package sse serves event streams of durable streams (text/event-stream): a browser's
// EventSource on /v1/stream/{name} (one event per message, ids that resume with
// Last-Event-ID), sse-cluster's drop-in routes (/channel/..., /status: cluster.go), and the
// one loop every event stream runs on (Reader), which the Durable Streams protocol's
// live=sse responses use too with their own rendering (a Renderer).
//
// A Reader follows the stream on its feed (gateway/internal/dsread, the same ring and
// consumer the WebSocket subscribers read) and writes through a client connection of the
// gateway's core (gateway/internal/conns: the byte-bounded queue, the one writer, the
// heartbeat wheel, the slow-consumer policy).
//
// It must not import the gateway, another protocol package (wsstream, dshttp, dssubs), the
// Stream class or the runtime: the gateway hands it what it needs in Config.
package sse

import (
	"context"
	"log/slog"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/nats-io/nats.go"
)

// Cluster is what sse-cluster's /status and POST /channel need of the gateway: whether it
// reaches NATS JetStream, and the ids of the gateways alive now (their presence keys).
type Cluster interface {
	Ready() bool
	Gateways(ctx context.Context) ([]string, error)
}

// Config configures a Server; the gateway fills it from its Options.
type Config struct {
	// Gateway is this gateway's id (in /status, and in its answers to the other gateways).
	Gateway string
	// Conn carries the questions to the other gateways about their channels.
	Conn           *nats.Conn
	Cluster        Cluster
	Conns          *conns.Hub           // the client core
	Streams        *streamclient.Client // the Stream objects (sse-cluster publishes)
	Hub            *streamhub.Hub       // the feeds
	Hooks          *streamhub.Hooks     // the server hooks
	Reads          *dsread.Reader       // a stream's first read, and the reads that follow
	RequestTimeout time.Duration
	MaxBodyBytes   int64 // an sse-cluster publish's body
	Logger         *slog.Logger
}

// Server is a gateway's event streams.
type Server struct {
	opts     Config
	id       string
	ctx      context.Context
	conns    *conns.Hub
	sc       *streamclient.Client
	streams  *streamhub.Hub
	hooks    *streamhub.Hooks
	reads    *dsread.Reader
	codecs   codecs
	esOpens  sharedReads // EventSources' first reads (reader.go)
	channels *channels   // sse-cluster's subscribers here (cluster.go)
}

// New is the event streams of a gateway: they end when ctx ends, and until then it
// answers the other gateways' questions about its sse-cluster channels.
func New(ctx context.Context, cfg Config) *Server {
	h := &Server{opts: cfg, id: cfg.Gateway, ctx: ctx, conns: cfg.Conns, sc: cfg.Streams, streams: cfg.Hub,
		hooks: cfg.Hooks, reads: cfg.Reads, codecs: newCodecs(cfg.Hub), channels: &channels{n: map[string]int{}}}
	h.answerChannels(ctx)
	return h
}
