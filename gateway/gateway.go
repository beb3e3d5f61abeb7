// Package gateway is Holdfast's stateless edge: it serves HTTP and WebSockets, runs
// functions, and routes each request for an object to the host that owns it over NATS.
// It holds clients' WebSockets itself, so that objects can sleep or move while their
// sockets stay open. Any number of gateways may run against one NATS cluster.
//
// This package owns what every request meets — routing (buildMux, serve), API keys,
// CORS and origins (cors.go), the client's address, health and presence (presence.go),
// metrics (metrics.go) — and the object surfaces: requests to objects (objects.go),
// functions (functions.go) and object sockets (sockets.go). Each stream protocol is a
// package of its own under gateway/internal/, made and routed in streams.go; the client
// core every long-lived connection goes through is gateway/internal/conns.
//
// The gateway never imports the object runtime or an object class: it speaks to hosts
// only through the protocol in internal/wire, and to the Stream class through its
// contract (builtin/stream/streamapi) and typed client (gateway/internal/streamclient).
// TestImports holds that and the rules of the sub-packages.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/dshttp"
	"github.com/holdfast/holdfast/gateway/internal/dssubs"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/holdfast/holdfast/internal/bearer"
	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/olahol/melody"
	"github.com/prometheus/client_golang/prometheus"
)

// Route sends requests matching a net/http ServeMux pattern to an object class or a
// function.
type Route struct {
	Pattern string
	// Class routes to objects of this class, named by the pattern's {name} wildcard (or
	// {name...}), or by Name when it is set.
	Class string
	Name  string
	// Function routes to this handler instead.
	Function functions.Handler
}

// Options configure a Gateway.
type Options struct {
	// ID names this gateway; default a random NUID.
	ID     string
	Routes []Route
	// Namespaces maps object binding names to classes, for functions' Env.
	Namespaces map[string]string
	Buckets    map[string]functions.Bucket
	Vars       map[string]string
	// APIKeys, when set, are required on every request but /healthz and CORS preflights,
	// as "Authorization: Bearer <key>" (the scheme in any case), "?token=<key>" or
	// (durable-stream's) "?apiKey=<key>".
	APIKeys []string
	// AllowedOrigins may make cross-origin browser requests (CORS, cors.go) and open
	// WebSockets; "*" allows any. Empty: same origin only (non-browser clients, which
	// send no Origin, are allowed).
	AllowedOrigins []string
	MaxBodyBytes   int64 // default 1 MiB
	MaxMessage     int64 // one WebSocket message; default 64 KiB
	MaxConnections int   // open WebSockets; default 100,000
	RequestTimeout time.Duration
	// TrustedProxyHeader names the header a trusted proxy in front of the gateway sets to
	// the client's address ("X-Forwarded-For", "CF-Connecting-IP"). When set, objects and
	// functions see that address (its last entry) as the request's RemoteAddr; when not,
	// the header is ignored and RemoteAddr is the TCP peer.
	TrustedProxyHeader string
	// Mounts are extra handlers by path prefix ending in "/" (the file API, for instance).
	// They get the same authentication as routes, and the raw path: keys may hold "//".
	Mounts map[string]http.Handler
	// Readiness, when set, must also answer nil before /healthz says ok: a part served
	// beside the gateway that opens in the background (the file store, for instance).
	Readiness func() error
	// Replicas of every stream and bucket the gateway makes, as cluster.Resolve decided
	// (the CLI decides it at start); 0 is 1.
	Replicas int
	Logger   *slog.Logger
	// Streams serves durable message streams at GET /v1/stream/{name...} (a WebSocket;
	// docs/streams.md), kept by objects of class StreamClass, which hosts must serve.
	Streams bool
	// StreamRetention limits streams by name pattern; the first match applies.
	StreamRetention []StreamRetention
	// StreamQueueBytes bounds each client connection's outgoing queue (stream and object
	// WebSockets, event streams): past it the connection is closed as a slow consumer
	// (4008); default 1 MiB.
	StreamQueueBytes int
	// StreamRingMsgs and StreamRingBytes bound the recent messages this gateway keeps per
	// stream it reads (its readers behind the head read them there): defaults 4,096 and
	// 4 MiB (gateway/internal/feed).
	StreamRingMsgs, StreamRingBytes int
	// LongPollTimeout is how long a Durable Streams long-poll read waits for data; default 30 s.
	LongPollTimeout time.Duration
	// SSEHeartbeat is the longest silence on an SSE response (a comment line); default 15 s.
	SSEHeartbeat time.Duration
	// StreamHooks authorize stream subscribes and publishes and transform messages
	// (package streams; docs/streams.md, "Server hooks").
	StreamHooks streams.Hooks
	// WebhookAllowLocalhost admits Durable Streams webhook URLs on http://localhost and
	// http://127.x.x.x (the protocol's development exception; on in `holdfast dev`).
	// Off: webhooks must be https to public addresses.
	WebhookAllowLocalhost bool
	// ControlConn, when set, carries the control plane: the presence key's renewals and the
	// owner cache's watches, on a connection of their own so that a flood of client
	// requests on the main one cannot delay them past the presence TTL. Default: the main
	// connection.
	ControlConn *nats.Conn
	// Address and Version are announced in the presence key (holdfast status).
	Address, Version string
	// Metrics, when set, is where the gateway registers its Prometheus metrics
	// (internal/metrics; docs/operations.md lists them).
	Metrics prometheus.Registerer
	// MetricsHandler, when set, is served at GET /metrics behind the API key, like every
	// route but /healthz (a gateway without API keys serves it to anyone: the CLI sets it
	// only on a gateway with keys, and serves metrics unauthenticated on --metrics-listen).
	MetricsHandler http.Handler
	// PublicURL is where clients reach the cluster (scheme://host[/prefix], no trailing
	// slash): Durable Streams subscription callback and JWKS URLs start with it. Empty:
	// the scheme and Host of the request that created the subscription.
	PublicURL string
}

// DefaultLongPollTimeout is how long a long-poll read waits for data without
// Options.LongPollTimeout.
const DefaultLongPollTimeout = dshttp.DefaultLongPollTimeout

// StreamClass is the class of the objects behind durable streams (its contract is package
// builtin/stream/streamapi): the hosts must serve it when Options.Streams is set.
const StreamClass = streamapi.ClassName

// StreamRetention limits the streams whose names match Pattern: tokens separated by "/",
// "*" matching one token and a last ">" one or more. Zero is no limit.
type StreamRetention = streamhub.Retention

// presenceTTL is how long a gateway stays "live" without renewing; objects close the
// sockets of a gateway that is not.
const presenceTTL = 5 * time.Second

// Gateway is one edge process's HTTP front.
type Gateway struct {
	opts        Options
	id          string
	nc          *nats.Conn
	log         *slog.Logger
	mux         *http.ServeMux
	ready       atomic.Bool
	draining    atomic.Bool // Drain was called (drain.go)
	client      atomic.Pointer[objclient.Client]
	res         *cluster.Resources
	js          jetstream.JetStream
	melody      *melody.Melody // object sockets' (conns.NewMelody)
	conns       *conns.Hub     // every client connection's queue and writer (gateway/internal/conns)
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	keys        [][32]byte
	sockets     socketTable
	socketsOpen openSockets // object sockets' sessions, which Close waits for
	env         *env
	sc          *streamclient.Client // the Stream objects
	requests    requestCounts        // plain requests in flight (presence.go)
	started     time.Time
	ctrl        jetstream.JetStream // the control plane's (Options.ControlConn)
	metrics     *metrics.Gateway
	routeClass  map[string]string // mux pattern → route class of the config's routes
}

// New builds a gateway on nc. It serves at once: until JetStream answers, /healthz says
// 503 and every other request is refused with 503, while a background loop keeps trying.
func New(nc *nats.Conn, opts Options) (*Gateway, error) {
	if opts.ID == "" {
		opts.ID = nuid.Next()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 64 << 10
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 100000
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{opts: opts, id: opts.ID, nc: nc, log: opts.Logger.With("gateway", opts.ID), started: time.Now().UTC()}
	g.metrics = metrics.NewGateway(opts.Metrics, g.connections)
	g.sc = streamclient.New(streamclient.SenderFunc(g.request))
	// Made now (it does no I/O): the stream parts hold it from the start, and use it once
	// the gateway is ready (requests are refused before).
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	g.js = js
	g.ctx, g.cancel = context.WithCancel(context.Background())
	for _, k := range opts.APIKeys {
		g.keys = append(g.keys, sha256.Sum256([]byte(k)))
	}
	g.sockets.m = map[string]*gwSocket{}
	g.env = &env{g: g}
	g.conns = conns.NewHub(g.ctx, conns.Config{QueueBytes: opts.StreamQueueBytes, Heartbeat: opts.SSEHeartbeat, Logger: g.log, Metrics: g.metrics})
	g.melody = conns.NewMelody(g.opts.MaxMessage)
	if err := g.buildMux(); err != nil {
		return nil, err
	}
	g.wg.Add(1)
	go g.connect()
	return g, nil
}

// ID is the gateway's id.
func (g *Gateway) ID() string { return g.id }

// serveHealth answers /healthz: 200 once the gateway reaches JetStream and every part
// in Options.Readiness is up, else 503 saying what is missing ({"status":"draining"} once
// it drains).
func (g *Gateway) serveHealth(w http.ResponseWriter) {
	if err := g.Healthy(); errors.Is(err, ErrDraining) {
		serveHealthDraining(w)
		return
	} else if err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Healthy is /healthz's answer: nil once the gateway reaches JetStream and every part in
// Options.Readiness is up, else what is missing; ErrDraining once it drains.
func (g *Gateway) Healthy() error {
	if g.draining.Load() {
		return ErrDraining
	}
	if !g.Ready() {
		return errors.New("not connected to NATS JetStream yet")
	}
	if g.opts.Readiness != nil {
		return g.opts.Readiness()
	}
	return nil
}

// Ready reports whether the gateway reaches JetStream and serves requests.
func (g *Gateway) Ready() bool { return g.ready.Load() && g.nc.IsConnected() }

// connect sets up the shared resources, the owner cache, presence and the socket command
// subscription, retrying with backoff until it works or the gateway closes.
func (g *Gateway) connect() {
	defer g.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		err := g.setup()
		if err == nil {
			g.ready.Store(true)
			g.log.Info("gateway ready")
			return
		}
		g.log.Warn("cannot reach JetStream yet; retrying", "in", backoff, "err", err)
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (g *Gateway) setup() error {
	ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
	defer cancel()
	js := g.js
	res, err := cluster.Ensure(ctx, js, cluster.Options{Replicas: g.opts.Replicas, Logger: g.log})
	if err != nil {
		return err
	}
	ctrl, cres := js, res
	if g.opts.ControlConn != nil {
		if ctrl, err = jetstream.New(g.opts.ControlConn); err != nil {
			return err
		}
		if cres, err = cluster.Bind(ctx, ctrl); err != nil {
			return err
		}
	}
	owners, err := objclient.WatchOwners(g.ctx, objclient.WatchConfig{Leases: cres.Leases, Hosts: cres.Hosts, Logger: g.log})
	if err != nil {
		return err
	}
	sub, err := g.nc.Subscribe(wire.GatewaySubject(g.id), g.command)
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, 256<<20)
	rev, err := cres.Gateways.Create(ctx, g.id, g.presence(), jetstream.KeyTTL(presenceTTL))
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("presence: %w", err)
	}
	g.res, g.ctrl = res, ctrl
	g.client.Store(objclient.New(g.nc, owners))
	g.wg.Add(1)
	go g.keepPresence(rev)
	return nil
}

// keepPresence renews the gateway's presence key until the gateway closes.
func (g *Gateway) keepPresence(rev uint64) {
	defer g.wg.Done()
	t := time.NewTicker(presenceTTL / 5)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = g.res.Gateways.Delete(ctx, g.id)
			cancel()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(g.ctx, presenceTTL/2)
		next, err := cluster.RenewTTL(ctx, g.ctrl, wire.GatewayBucket, g.id, g.presence(), rev, presenceTTL)
		cancel()
		result := metrics.RenewOK
		switch {
		case err == nil:
			rev = next
		case cluster.IsWrongLastSeq(err):
			result = metrics.RenewLapsed
			// Our presence lapsed (we were paused or cut off): objects have closed our
			// sockets already, so close them here too and start a fresh presence.
			g.log.Warn("gateway presence lapsed; closing its sockets")
			g.sockets.closeAll(1012, "gateway presence lapsed")
			ctx, cancel := context.WithTimeout(g.ctx, presenceTTL/2)
			if r, err := g.res.Gateways.Create(ctx, g.id, g.presence(), jetstream.KeyTTL(presenceTTL)); err == nil {
				rev = r
			}
			cancel()
		default:
			result = metrics.RenewError
			g.log.Warn("gateway presence renewal failed; retrying", "err", err)
		}
		g.metrics.PresenceRenewals.WithLabelValues(result).Inc()
	}
}

// Close drains the gateway (Drain, without a delay, unless it was called), so that every
// WebSocket is closed (their objects get close events), and leaves.
func (g *Gateway) Close(ctx context.Context) error {
	_ = g.Drain(ctx, 0)
	g.socketsOpen.stop()
	_ = g.melody.Close()
	done := make(chan struct{})
	go func() {
		// The sessions' close notices go out before NATS may be closed under them.
		g.socketsOpen.wg.Wait()
		g.cancel()
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serve) }

func (g *Gateway) buildMux() (err error) {
	g.mux = http.NewServeMux()
	g.routeClass = map[string]string{}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gateway: route: %v", r)
		}
	}()
	for _, rt := range g.opts.Routes {
		rt := rt
		switch {
		case rt.Function != nil:
			g.routeClass[rt.Pattern] = metrics.RouteFunction
			g.mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
				r.Body = http.MaxBytesReader(w, r.Body, g.opts.MaxBodyBytes)
				rt.Function.ServeFetch(w, r, g.env)
			})
		case rt.Class != "":
			oneSegment := !strings.Contains(rt.Pattern, "{name...}")
			g.routeClass[rt.Pattern] = metrics.RouteObject
			g.mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
				name := rt.Name
				if name == "" {
					name = r.PathValue("name")
					if oneSegment && strings.Contains(name, "/") {
						// ServeMux matched "a%2Fb" as one segment and decoded it: a
						// {name} wildcard names a one-token object, never "a/b".
						httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName,
							"an encoded '/' (%2F) cannot be part of a name in this route; names with several tokens need a {name...} route")
						return
					}
				}
				g.serveObject(w, r, rt.Class, name)
			})
		default:
			return fmt.Errorf("gateway: route %q has neither a class nor a function", rt.Pattern)
		}
	}
	if g.opts.Streams {
		g.buildStreams() // streams.go
	}
	return nil
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	o, done := g.observeHTTP(w, r)
	defer done()
	g.route(o, r)
}

// route serves r, naming its route class in o for the metrics.
func (g *Gateway) route(o *observed, r *http.Request) {
	var w http.ResponseWriter = o
	if r.URL.Path == "/healthz" {
		o.route = metrics.RouteHealth
		g.serveHealth(w)
		return
	}
	if r.URL.Path == "/metrics" && g.opts.MetricsHandler != nil {
		o.route = metrics.RouteMetrics
	}
	if g.cors(w, r) { // preflights, before authentication (cors.go)
		return
	}
	key, ok := g.authorized(r)
	if !ok && !dssubs.TokenAuth(r) { // subscription callbacks carry a wake token instead
		w.Header().Set("WWW-Authenticate", `Bearer realm="holdfast"`)
		httperr.Write(w, http.StatusUnauthorized, httperr.CodeUnauthorized, "missing or wrong API key: send Authorization: Bearer <key> or ?token=<key>")
		return
	}
	if key != "" {
		r = r.WithContext(context.WithValue(r.Context(), apiKeyContext{}, key))
	}
	if o.route == metrics.RouteMetrics {
		g.opts.MetricsHandler.ServeHTTP(w, r)
		return
	}
	r.RemoteAddr = g.clientAddr(r)
	defer g.requests.track(r)()
	if !g.ready.Load() {
		w.Header().Set("Retry-After", "1")
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, "not connected to NATS JetStream yet")
		return
	}
	if g.refuseDraining(w, r) {
		return
	}
	for prefix, h := range g.opts.Mounts {
		if strings.HasPrefix(r.URL.Path, prefix) {
			o.route = metrics.RouteFiles
			h.ServeHTTP(w, r)
			return
		}
	}
	if p := r.URL.Path; p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/") {
		// ServeMux would redirect to the cleaned path; for names, "a//b" is an error.
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, "the path has empty, '.' or '..' segments")
		return
	}
	_, pattern := g.mux.Handler(r)
	if pattern == "" {
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "no route for "+r.Method+" "+r.URL.Path)
		return
	}
	o.route = g.routeOf(pattern)
	g.mux.ServeHTTP(w, r)
}

// apiKeyContext is the request context key of the API key a request authenticated with.
type apiKeyContext struct{}

// requestKey is the API key r authenticated with, or "" when the gateway has none.
func requestKey(r *http.Request) string {
	k, _ := r.Context().Value(apiKeyContext{}).(string)
	return k
}

// authorized checks the API key in constant time (over digests, so that a key's length
// does not leak either). It returns the key that matched: the one presented, since it
// equals a configured key.
func (g *Gateway) authorized(r *http.Request) (string, bool) {
	if len(g.keys) == 0 {
		return "", true
	}
	key, ok := bearer.Token(r.Header.Get("Authorization"))
	if !ok {
		q := r.URL.Query()
		if key = q.Get("token"); key == "" {
			key = q.Get("apiKey") // durable-stream's clients
		}
	}
	if key == "" {
		return "", false
	}
	d := sha256.Sum256([]byte(key))
	match := 0
	for i := range g.keys {
		match |= subtle.ConstantTimeCompare(d[:], g.keys[i][:])
	}
	if match != 1 {
		return "", false
	}
	return key, true
}

// checkOrigin enforces AllowedOrigins on WebSocket upgrades and CORS.
func (g *Gateway) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range g.opts.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	if len(g.opts.AllowedOrigins) == 0 {
		host, ok := strings.CutPrefix(origin, "http://")
		if !ok {
			host, _ = strings.CutPrefix(origin, "https://")
		}
		return strings.EqualFold(host, r.Host)
	}
	return false
}

// clientAddr is the client's address: from the trusted proxy header when configured (its
// last entry, the one the proxy itself added), else the TCP peer's IP.
func (g *Gateway) clientAddr(r *http.Request) string {
	if h := g.opts.TrustedProxyHeader; h != "" {
		if v := r.Header.Get(h); v != "" {
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if ip := strings.TrimSpace(v); ip != "" {
				return ip
			}
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
