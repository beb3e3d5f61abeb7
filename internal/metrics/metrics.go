// Package metrics owns Holdfast's Prometheus metrics: every name, help text, label and
// histogram bucket is defined here, and nowhere else. Each role gets its set (Gateway,
// Host, Files, NATS) registered on a registry the process makes (NewRegistry), never on the
// client library's global default, so that tests and `holdfast dev`, which runs a gateway
// and a host in one process, never collide. docs/operations.md lists every metric; a test
// keeps the two in step.
//
// Names follow Prometheus conventions: the holdfast_ prefix, base units (seconds, bytes),
// _total on counters, and labels of bounded cardinality only: a transport, a route class,
// a status code, a result, a class name (classes are compiled into the binary). Never an
// object's, a stream's or a connection's name: those belong in logs.
package metrics

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the prefix of every metric.
const Namespace = "holdfast"

// Result label values shared by several metrics.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// NewRegistry returns a registry holding the Go runtime and process collectors and
// holdfast_build_info for version.
func NewRegistry(version string) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help:        "Always 1; the version label is this binary's (mixed versions show during a rolling upgrade).",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
	)
	return r
}

// Handler serves g's metrics in the Prometheus text format (or OpenMetrics when the
// scraper asks for it).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// register registers c on r, or returns the collector already registered there with the
// same description (two sets of one role in one process share their counters). With a nil
// r, c counts but nothing exports it.
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if r == nil {
		return c
	}
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("metrics: " + err.Error()) // two definitions of one name: a bug here
	}
	return c
}

func counter(r prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	return register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels))
}

func gauge(r prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	return register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels))
}

func histogram(r prometheus.Registerer, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels))
}

// Histogram buckets, in seconds.
var (
	// fastBuckets cover JetStream round trips and commits: 250 µs to about 16 s.
	fastBuckets = prometheus.ExponentialBuckets(0.00025, 2, 17)
	// requestBuckets cover requests through to an object and back: 1 ms to about 30 s.
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)
