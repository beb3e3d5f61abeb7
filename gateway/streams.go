package gateway

// The stream parts of a gateway (Options.Streams), each a package of its own under
// gateway/internal/ with the gateway's part limited to what is here: make each from the
// Options, hand it the shared parts (the client core, the typed client of the Stream
// objects, the stream hub and hooks) and what it asks of the gateway (the origin policy,
// peers), and route its paths.
//
//	streamhub  the feeds, retention, the server hooks   (shared by all of them)
//	wsstream   /v1/stream WebSockets, durable-stream's /stream
//	dsread     Durable Streams reads, forks' included   (dshttp, sse)
//	sse        EventSources, sse-cluster, the event-stream loop
//	dshttp     the Durable Streams protocol over HTTP
//	dssubs     the Durable Streams subscriptions

import (
	"net/http"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway/internal/dshttp"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/gateway/internal/dssubs"
	"github.com/holdfast/holdfast/gateway/internal/sse"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/holdfast/holdfast/gateway/internal/wsstream"
)

// buildStreams makes the stream parts and routes their paths on g.mux.
func (g *Gateway) buildStreams() {
	hub := streamhub.New(g.ctx, streamhub.Config{
		JetStream: g.js, Conn: g.nc, Streams: g.sc, Retention: g.opts.StreamRetention, Logger: g.log,
		RingMsgs: g.opts.StreamRingMsgs, RingBytes: g.opts.StreamRingBytes, StartTimeout: g.opts.RequestTimeout,
	})
	hooks := streamhub.NewHooks(g.opts.StreamHooks, g.log, requestKey)
	ws := wsstream.New(g.ctx, wsstream.Config{
		Gateway: g.id, MaxMessage: g.opts.MaxMessage, RequestTimeout: g.opts.RequestTimeout, Logger: g.log,
		Conns: g.conns, Streams: g.sc, Hub: hub, Hooks: hooks, Metrics: g.metrics, CheckOrigin: g.checkOrigin,
	})
	reads := dsread.New(g.sc, hub)
	events := sse.New(g.ctx, sse.Config{
		Gateway: g.id, Conn: g.nc, Cluster: peers{g}, Conns: g.conns, Streams: g.sc, Hub: hub, Hooks: hooks,
		Reads: reads, RequestTimeout: g.opts.RequestTimeout, MaxBodyBytes: g.opts.MaxBodyBytes, Logger: g.log,
	})
	ds := dshttp.New(g.ctx, dshttp.Config{
		Streams: g.sc, Hub: hub, Hooks: hooks, Reads: reads, Events: events, LongPoll: g.opts.LongPollTimeout,
		Draining:       g.conns.Draining(),
		RequestTimeout: g.opts.RequestTimeout, MaxBodyBytes: g.opts.MaxBodyBytes, Metrics: g.metrics,
	})
	// /v1/stream/{name...}: a WebSocket, else Durable Streams over HTTP (an EventSource
	// among them).
	g.mux.HandleFunc("/v1/stream/{name...}", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && websocket.IsWebSocketUpgrade(r) {
			ws.ServeStream(w, r)
			return
		}
		ds.ServeHTTP(w, r)
	})
	// sse-cluster's drop-in routes.
	g.mux.HandleFunc("GET /channel/{ch}", events.ServeChannel)
	g.mux.HandleFunc("GET /channel/{ch}/client/{id}", events.ServeChannel)
	g.mux.HandleFunc("POST /channel/{ch}", events.Publish)
	g.mux.HandleFunc("POST /channel", events.PublishAll)
	g.mux.HandleFunc("GET /status", events.ServeStatus)
	g.mux.HandleFunc("GET /stream/{subject...}", ws.ServeCompat) // durable-stream's clients
	// The Durable Streams subscriptions' API, /v1/stream/__ds/ (more specific than
	// /v1/stream/{name...}), and their engine, which Close waits for.
	subs := dssubs.New(g.ctx, dssubs.Config{
		Gateway: g.id, Conn: g.nc, JetStream: g.js, Cluster: peers{g}, Streams: g.sc, Replicas: g.opts.Replicas,
		RequestTimeout: g.opts.RequestTimeout, PublicURL: g.opts.PublicURL, AllowLocalhost: g.opts.WebhookAllowLocalhost, Logger: g.log,
	})
	g.mux.Handle("/v1/stream/__ds/{rest...}", subs)
	g.wg.Add(1)
	go func() { defer g.wg.Done(); subs.Run() }()
}
