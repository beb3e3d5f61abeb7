package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// MetricsServer serves a process's metrics at /metrics and its health at /healthz on a
// listener of its own (--metrics-listen), without authentication: it is meant for a
// private network that only the monitoring system reaches.
type MetricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// ServeMetrics listens on addr and serves g's metrics there; health answers /healthz
// (nil: 200 ok, else 503 with its message).
func ServeMetrics(addr string, g prometheus.Gatherer, health func() error, log *slog.Logger) (*MetricsServer, error) {
	ln, err := Listen(addr, "metrics endpoint (--metrics-listen)")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(g))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := health(); err != nil {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	m := &MetricsServer{srv: NewServer(mux, log), ln: ln}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

// Addr is the address it listens on.
func (m *MetricsServer) Addr() net.Addr { return m.ln.Addr() }

// Close stops it within ctx.
func (m *MetricsServer) Close(ctx context.Context) { Shutdown(ctx, m.srv) }
