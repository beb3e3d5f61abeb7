package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/objclient"
)

// observed records a request in the gateway's metrics once it is answered: its route
// class and status code, and for a plain request (not a WebSocket, an event stream or a
// long-poll, which last as long as the client stays) how long it took.
type observed struct {
	http.ResponseWriter
	code  int
	route string
}

// observeHTTP wraps w; the returned function records the request when it ends.
func (g *Gateway) observeHTTP(w http.ResponseWriter, r *http.Request) (*observed, func()) {
	o := &observed{ResponseWriter: w, route: metrics.RouteNone}
	began := time.Now()
	return o, func() {
		code := o.code
		if code == 0 {
			code = http.StatusOK
		}
		g.metrics.HTTPRequests.WithLabelValues(o.route, strconv.Itoa(code)).Inc()
		if code != http.StatusSwitchingProtocols && kindOf(r) == kHTTP {
			g.metrics.HTTPDuration.WithLabelValues(o.route).Observe(time.Since(began).Seconds())
		}
	}
}

func (o *observed) WriteHeader(code int) {
	if o.code == 0 {
		o.code = code
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *observed) Write(b []byte) (int, error) {
	if o.code == 0 {
		o.code = http.StatusOK
	}
	return o.ResponseWriter.Write(b)
}

func (o *observed) Unwrap() http.ResponseWriter { return o.ResponseWriter }

func (o *observed) Flush() { _ = http.NewResponseController(o.ResponseWriter).Flush() }

// Hijack hands the connection over (a WebSocket upgrade, an event stream written by the
// gateway's own writer): the request counts as 101 unless a status was written first.
func (o *observed) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(o.ResponseWriter).Hijack()
	if err == nil && o.code == 0 {
		o.code = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

var (
	_ http.Hijacker = (*observed)(nil)
	_ http.Flusher  = (*observed)(nil)
)

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
