package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/dssubs"
	"github.com/holdfast/holdfast/gateway/internal/sse"
	"github.com/holdfast/holdfast/internal/wire"
)

// presence is the value of the gateway's presence key, refreshed at every renewal: who
// it is and how many connections it holds, by transport (holdfast status reads it). The
// long-lived ones (WebSockets, event streams) are the client core's, which counts every
// one from its admission to its end however its handler returned (gateway/internal/conns);
// plain requests count while their handler runs.
func (g *Gateway) presence() []byte {
	b, _ := json.Marshal(wire.GatewayPresence{
		ID: g.id, Address: g.opts.Address, Version: g.opts.Version, Started: g.started,
		Connections: g.connections(),
	})
	return b
}

// connections are the open connections by transport, as the presence and the metrics
// report them.
func (g *Gateway) connections() map[string]int {
	return map[string]int{
		wire.ConnObjectSocket: int(g.conns.Open(conns.ObjectSocket)),
		wire.ConnStreamSocket: int(g.conns.Open(conns.StreamSocket)),
		wire.ConnEventSource:  int(g.conns.Open(conns.EventSource) + g.conns.Open(conns.StreamSSE)),
		wire.ConnLongPoll:     int(g.requests.longPoll.Load()),
		wire.ConnHTTP:         int(g.requests.http.Load()),
	}
}

// requestCounts counts the plain requests in flight: long-polls, and the others.
type requestCounts struct {
	longPoll, http atomic.Int64
}

// track counts r while its handler runs (done ends it), unless it becomes a long-lived
// connection (a WebSocket, an event stream), which the client core counts.
func (c *requestCounts) track(r *http.Request) (done func()) {
	var n *atomic.Int64
	switch requestKindOf(r) {
	case longLived:
		return func() {}
	case longPoll:
		n = &c.longPoll
	default:
		n = &c.http
	}
	n.Add(1)
	return func() { n.Add(-1) }
}

// requestKind is how a request uses its connection.
type requestKind int

const (
	plainRequest requestKind = iota
	longPoll
	longLived // a WebSocket or an event stream: the client core's
)

func requestKindOf(r *http.Request) requestKind {
	switch {
	case websocket.IsWebSocketUpgrade(r), strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		return longLived
	case strings.Contains(r.URL.RawQuery, "live="):
		switch r.URL.Query().Get("live") {
		case "sse":
			return longLived
		case "long-poll":
			return longPoll
		}
	}
	return plainRequest
}

// peers is what the stream parts ask of the gateway's place in the cluster: whether it
// reaches JetStream, and which gateways are alive (their presence keys).
type peers struct{ g *Gateway }

var (
	_ sse.Cluster    = peers{}
	_ dssubs.Cluster = peers{}
)

// errNotReady: the gateway does not reach JetStream yet.
var errNotReady = errors.New("gateway: not connected to NATS JetStream yet")

func (p peers) Ready() bool { return p.g.Ready() }

// Gateways are the ids of the gateways alive now, this one included.
func (p peers) Gateways(ctx context.Context) ([]string, error) {
	if !p.g.ready.Load() {
		return nil, errNotReady
	}
	return p.g.res.Gateways.Keys(ctx)
}
