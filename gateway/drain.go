package gateway

// Graceful drain: a gateway about to stop takes itself out of its load balancer's
// rotation and sends every long-lived client to another gateway, each in the way its
// protocol reconnects without an error (docs/deploy.md, "Stopping").
//
//   - At once: /healthz answers 503 {"status":"draining"} (a load balancer's or a
//     Kubernetes readiness check stops sending new clients), and a request that would
//     open a long-lived connection — a WebSocket upgrade of any kind, an EventSource or
//     live=sse response, a live=long-poll read — is refused with 503 and Retry-After, so
//     its client tries again, elsewhere. Short requests (an object's, a function's, a
//     Durable Streams append or catch-up read, the file API) are still served until the
//     HTTP server shuts down: they finish within the request timeout anyway.
//   - After the delay given to Drain (the time a load balancer takes to notice): every
//     WebSocket, object sockets and stream sockets alike, is closed with 1012 (Service
//     Restart, conns.CloseServiceRestart), which the Go and JS clients take as "reconnect
//     now", resuming where they were; every event stream ends, so an EventSource reconnects
//     with its Last-Event-ID and a Durable Streams client from its last offset; every
//     long-poll waiting is answered as at its timeout (204, its offset headers), so its
//     client polls again. All of it goes through the client core (conns.Hub.Drain).

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/internal/httperr"
)

// ErrDraining is Healthy's answer once the gateway drains.
var ErrDraining = errors.New("gateway draining")

// Close codes of a draining gateway.
const (
	// CloseServiceRestart: the gateway is stopping; reconnect now (to another gateway)
	// and resume. The Go and JS clients do so without reporting an error.
	CloseServiceRestart = conns.CloseServiceRestart
)

// Drain takes the gateway out of service: /healthz says 503 draining and new long-lived
// connections are refused at once; after delay, every long-lived connection is ended so
// that its client reconnects elsewhere. It returns once they have ended, or with ctx's
// error. Close drains first (without a delay) when Drain was not called.
func (g *Gateway) Drain(ctx context.Context, delay time.Duration) error {
	if !g.draining.Swap(true) {
		g.log.Info("gateway draining", "delay", delay, "connections", g.connections())
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	// Object sockets through their table, so that each object is told the code too.
	g.sockets.closeAll(CloseServiceRestart, conns.DrainReason)
	return g.conns.Drain(ctx)
}

// Draining reports whether Drain was called.
func (g *Gateway) Draining() bool { return g.draining.Load() }

// serveHealthDraining is /healthz's answer while draining.
func serveHealthDraining(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"status":"draining"}` + "\n"))
}

// refuseDraining answers 503 with Retry-After to a request that would open a long-lived
// connection while the gateway drains, and reports whether it did.
func (g *Gateway) refuseDraining(w http.ResponseWriter, r *http.Request) bool {
	if !g.draining.Load() || requestKindOf(r) == plainRequest { // presence.go
		return false
	}
	w.Header().Set("Retry-After", "1")
	httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, "gateway draining: connect to another gateway")
	return true
}
