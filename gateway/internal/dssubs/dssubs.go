// Package dssubs is the Durable Streams subscriptions of a gateway (PROTOCOL.md sections 6
// and 7): the control API under /v1/stream/__ds/ (api.go), the subscriptions and their
// signing secrets in a KV bucket shared by every gateway (state.go), and the engine that
// wakes them — webhook notifications and pull-wake events (engine.go, webhook.go).
//
// It reads streams only through the typed client of their objects
// (gateway/internal/streamclient: a stream's tail, configuration, a wake event's append)
// and hears of appends through a core NATS queue subscription on the covered log subjects
// (the matcher; engine.go says why it does not read the gateway's feeds). What it needs of
// the gateway itself is Cluster.
//
// It must not import a transport (the client core, WebSocket or event streams, the
// Durable Streams HTTP protocol, the feeds), the gateway, the Stream class or the runtime.
package dssubs

import (
	"context"
	"log/slog"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is what the subscriptions need of the gateway's place in the cluster: whether it
// reaches NATS JetStream (the bucket opens then), and the ids of the gateways alive now
// (each reconciles its share of the subscriptions).
type Cluster interface {
	Ready() bool
	Gateways(ctx context.Context) ([]string, error)
}

// Config configures a Server; the gateway fills it from its Options.
type Config struct {
	// Gateway is this gateway's id.
	Gateway string
	// Conn carries the matcher's queue subscription on the stream log subjects.
	Conn *nats.Conn
	// JetStream holds the subscriptions bucket and lists the streams a pattern matches.
	JetStream jetstream.JetStream
	Cluster   Cluster
	Streams   *streamclient.Client // the Stream objects: tails, wake streams
	// Replicas of the bucket (0: the cluster's choice).
	Replicas       int
	RequestTimeout time.Duration
	// PublicURL is where clients reach the cluster (Options.PublicURL): callback and JWKS
	// URLs start with it; empty: the scheme and Host of the request.
	PublicURL string
	// AllowLocalhost admits webhook URLs on http://localhost and loopback (the protocol's
	// development exception; Options.WebhookAllowLocalhost).
	AllowLocalhost bool
	Logger         *slog.Logger
}
