package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/objclient"
)

// observed records a request in the gateway's metrics once it is answered: its route
// class and status code, and for a plain request (not a WebSocket, an event stream or a
// long-poll, which last as long as the client stays) how long it took.
type observed struct {
	*metrics.Recorder
	route string
}

// observeHTTP wraps w; the returned function records the request when it ends.
func (g *Gateway) observeHTTP(w http.ResponseWriter, r *http.Request) (*observed, func()) {
	o := &observed{Recorder: metrics.NewRecorder(w), route: metrics.RouteNone}
	began := time.Now()
	return o, func() {
		code := o.Code()
		g.metrics.HTTPRequests.WithLabelValues(o.route, o.CodeLabel()).Inc()
		if code != http.StatusSwitchingProtocols && requestKindOf(r) == plainRequest {
			g.metrics.HTTPDuration.WithLabelValues(o.route).Observe(time.Since(began).Seconds())
		}
	}
}

// routeOf is the route class of a request the mux matched with pattern: the config's
// routes are objects or functions, every built-in one is a stream route.
func (g *Gateway) routeOf(pattern string) string {
	if c, ok := g.routeClass[pattern]; ok {
		return c
	}
	return metrics.RouteStream
}

// objectResult names the outcome of a request to an object for the metrics.
func objectResult(err error) string {
	switch {
	case err == nil:
		return metrics.ObjectOK
	case errors.Is(err, context.Canceled):
		return metrics.ObjectCanceled
	case errors.Is(err, objclient.ErrNoHosts):
		return metrics.ObjectNoHosts
	case errors.Is(err, objclient.ErrOverloaded):
		return metrics.ObjectOverloaded
	case errors.Is(err, objclient.ErrCommitFailed):
		return metrics.ObjectCommitFailed
	case errors.Is(err, objclient.ErrBadRequest):
		return metrics.ObjectBadRequest
	case errors.Is(err, objclient.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return metrics.ObjectTimeout
	}
	return metrics.ObjectUnavailable
}
