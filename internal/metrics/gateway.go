package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Route classes of holdfast_gateway_http_requests_total.
const (
	RouteHealth   = "health"
	RouteMetrics  = "metrics"
	RouteObject   = "object"
	RouteFunction = "function"
	RouteStream   = "stream"
	RouteFiles    = "files"
	RouteNone     = "none" // no route matched (404), or refused before routing (401)
)

// Results of holdfast_gateway_object_requests_total, from the error the object client
// returned.
const (
	ObjectOK           = "ok"
	ObjectTimeout      = "timeout"       // may or may not have run
	ObjectUnavailable  = "unavailable"   // did not run: no owner reachable in time
	ObjectCommitFailed = "commit_failed" // ran, writes not committed
	ObjectOverloaded   = "overloaded"    // the object's queue is full
	ObjectNoHosts      = "no_hosts"      // no host serves the class
	ObjectBadRequest   = "bad_request"
	ObjectCanceled     = "canceled" // the client went away first
)

// Gateway is a gateway's metrics.
type Gateway struct {
	HTTPRequests          *prometheus.CounterVec   // route, code
	HTTPDuration          *prometheus.HistogramVec // route
	ObjectRequests        *prometheus.CounterVec   // class, result
	ObjectRequestDuration *prometheus.HistogramVec // class
	MessagesIn            *prometheus.CounterVec   // transport
	MessagesOut           *prometheus.CounterVec   // transport
	SlowConsumers         *prometheus.CounterVec   // transport
	PublishAck            prometheus.Histogram
	PublishDeliver        prometheus.Histogram
	PresenceRenewals      *prometheus.CounterVec // result
}

// NewGateway registers a gateway's metrics on r (nil: counted, exported nowhere).
// connections, read at each scrape, is the gateway's open connections by transport (the
// same counts its presence announces); one gateway per registry.
func NewGateway(r prometheus.Registerer, connections func() map[string]int) *Gateway {
	if connections != nil {
		register(r, &connCollector{get: connections})
	}
	return &Gateway{
		HTTPRequests: counter(r, "gateway_http_requests_total",
			"HTTP requests answered by the gateway, by route class and status code (a WebSocket upgrade counts as 101).", "route", "code"),
		HTTPDuration: histogram(r, "gateway_http_request_duration_seconds",
			"Time to answer a plain HTTP request (not WebSockets, event streams or long-polls), by route class.", requestBuckets, "route"),
		ObjectRequests: counter(r, "gateway_object_requests_total",
			"Requests the gateway sent to objects (HTTP requests, socket messages, stream operations), by class and result.", "class", "result"),
		ObjectRequestDuration: histogram(r, "gateway_object_request_duration_seconds",
			"Time from sending a request to an object to its answer, retries through the activation queue included, by class.", requestBuckets, "class"),
		MessagesIn: counter(r, "gateway_messages_in_total",
			"Messages received from clients (stream publishes, object socket messages), by transport.", "transport"),
		MessagesOut: counter(r, "gateway_messages_out_total",
			"Messages written to clients (stream deliveries, object socket sends), by transport.", "transport"),
		SlowConsumers: counter(r, "gateway_slow_consumer_disconnects_total",
			"Connections closed because the client did not read fast enough (its queue filled), by transport.", "transport"),
		PublishAck: register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace,
			Name:    "stream_publish_ack_seconds",
			Help:    "Time from a stream publish reaching the gateway to its acknowledgement leaving it (the message is stored).",
			Buckets: fastBuckets})),
		PublishDeliver: register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace,
			Name:    "stream_publish_deliver_seconds",
			Help:    "Time from a stream message being stored to its delivery being written to a subscriber (by the stored timestamp: across machines it includes their clock skew).",
			Buckets: fastBuckets})),
		PresenceRenewals: counter(r, "gateway_presence_renewals_total",
			"Renewals of the gateway's presence key, by result (lapsed: the key had expired; the gateway closed its object sockets).", "result"),
	}
}

// connCollector reports the open connections at each scrape.
type connCollector struct{ get func() map[string]int }

var connDesc = prometheus.NewDesc(Namespace+"_gateway_connections",
	"Open client connections, by transport (object_ws, stream_ws, event_stream, long_poll, http).", []string{"transport"}, nil)

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) { ch <- connDesc }

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	for t, n := range c.get() {
		ch <- prometheus.MustNewConstMetric(connDesc, prometheus.GaugeValue, float64(n), t)
	}
}
