package metrics

import (
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Names of a process's NATS connections, the conn label of the holdfast_nats_ metrics:
// each role has a data connection and a control-plane one (lease renewals, presence,
// watches), so that a flood on the first cannot delay the second.
const (
	ConnGateway        = "gateway"
	ConnGatewayControl = "gateway_control"
	ConnObjects        = "objects"
	ConnObjectsControl = "objects_control"
)

// NATS reports a process's NATS connections at each scrape, from their own statistics.
type NATS struct {
	mu    sync.Mutex
	conns map[string]*nats.Conn
}

var (
	natsConnected  = prometheus.NewDesc(Namespace+"_nats_connected", "1 while the connection is up, 0 while it is reconnecting or closed.", []string{"conn"}, nil)
	natsReconnects = prometheus.NewDesc(Namespace+"_nats_reconnects_total", "Times the connection reconnected to NATS (to the same or another server).", []string{"conn"}, nil)
	natsInMsgs     = prometheus.NewDesc(Namespace+"_nats_in_messages_total", "Messages the connection received.", []string{"conn"}, nil)
	natsOutMsgs    = prometheus.NewDesc(Namespace+"_nats_out_messages_total", "Messages the connection sent.", []string{"conn"}, nil)
)

// NewNATS registers the NATS connection metrics on r (nil: exported nowhere).
func NewNATS(r prometheus.Registerer) *NATS {
	return register(r, &NATS{conns: map[string]*nats.Conn{}})
}

// Add reports nc under name (one of the Conn constants).
func (n *NATS) Add(name string, nc *nats.Conn) {
	n.mu.Lock()
	n.conns[name] = nc
	n.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (n *NATS) Describe(ch chan<- *prometheus.Desc) {
	ch <- natsConnected
	ch <- natsReconnects
	ch <- natsInMsgs
	ch <- natsOutMsgs
}

// Collect implements prometheus.Collector.
func (n *NATS) Collect(ch chan<- prometheus.Metric) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, nc := range n.conns {
		up := 0.0
		if nc.IsConnected() {
			up = 1
		}
		st := nc.Stats()
		ch <- prometheus.MustNewConstMetric(natsConnected, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(natsReconnects, prometheus.CounterValue, float64(st.Reconnects), name)
		ch <- prometheus.MustNewConstMetric(natsInMsgs, prometheus.CounterValue, float64(st.InMsgs), name)
		ch <- prometheus.MustNewConstMetric(natsOutMsgs, prometheus.CounterValue, float64(st.OutMsgs), name)
	}
}

var _ prometheus.Collector = (*NATS)(nil)
