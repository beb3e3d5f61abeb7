package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of holdfast_object_activations_total.
const (
	ActivationOK       = "ok"
	ActivationNotOwner = "not_owner" // another host holds it: the request was redirected there
	ActivationError    = "error"
)

// Reasons of holdfast_object_evictions_total.
const (
	EvictIdle  = "idle"  // no event for [objects] idle_timeout
	EvictDrain = "drain" // the host is stopping and handed it back
	EvictLost  = "lost"  // its lease ended: taken over elsewhere, the host lease lapsed, or a commit failed
)

// Reasons of holdfast_object_refusals_total.
const (
	RefuseOverloaded = "overloaded" // the object's queue was full
	RefuseDraining   = "draining"   // the host is stopping: the request goes elsewhere
)

// Results of holdfast_host_lease_renewals_total.
const (
	RenewOK     = "ok"
	RenewError  = "error"  // not answered in time; retried
	RenewLapsed = "lapsed" // refused: the lease had expired or was taken (holdfast_host_leases_lost_total)
)

// Results of holdfast_object_alarms_total.
const (
	AlarmOK      = "ok"
	AlarmRetry   = "retry"
	AlarmDropped = "dropped" // failed too often
)

// Host is an object host's metrics.
type Host struct {
	Active             *prometheus.GaugeVec     // class
	Activations        *prometheus.CounterVec   // class, result
	ActivationDuration *prometheus.HistogramVec // class
	Evictions          *prometheus.CounterVec   // class, reason
	Takeovers          *prometheus.CounterVec   // class
	Events             *prometheus.CounterVec   // class, op
	Refusals           *prometheus.CounterVec   // class, reason
	Commits            *prometheus.CounterVec   // class, result
	CommitDuration     prometheus.Histogram
	Alarms             *prometheus.CounterVec // class, result
	LeaseRenewals      *prometheus.CounterVec // result
	LeaseRenewalTime   prometheus.Histogram
	LeasesLost         prometheus.Counter
}

// NewHost registers an object host's metrics on r (nil: counted, exported nowhere).
func NewHost(r prometheus.Registerer) *Host {
	return &Host{
		Active: gauge(r, "objects_active", "Objects active on this host, by class.", "class"),
		Activations: counter(r, "object_activations_total",
			"Activation attempts on this host, by class and result (not_owner: another host holds the object).", "class", "result"),
		ActivationDuration: histogram(r, "object_activation_duration_seconds",
			"Time to activate an object: take its lease, read its log, fence it, construct it; by class.", fastBuckets, "class"),
		Evictions: counter(r, "object_evictions_total",
			"Objects that stopped being active on this host, by class and reason (idle, drain, lost).", "class", "reason"),
		Takeovers: counter(r, "object_takeovers_total",
			"Objects this host took over from a host whose lease had ended, by class.", "class"),
		Events: counter(r, "object_events_total",
			"Events run by objects on this host, by class and op (fetch, socket_message, socket_close, alarm).", "class", "op"),
		Refusals: counter(r, "object_refusals_total",
			"Requests refused without running, by class and reason (overloaded: the object's queue was full; draining: the host is stopping).", "class", "reason"),
		Commits: counter(r, "object_commits_total",
			"Records committed to objects' logs (one per group commit), by class and result.", "class", "result"),
		CommitDuration: register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace,
			Name:    "object_commit_duration_seconds",
			Help:    "Time to make one group commit durable (the fenced publish and, with it, the message log appends).",
			Buckets: fastBuckets})),
		Alarms: counter(r, "object_alarms_total", "Alarms fired, by class and result (ok, retry, dropped).", "class", "result"),
		LeaseRenewals: counter(r, "host_lease_renewals_total",
			"Renewals of this host's lease (every lease_ttl/4), by result (ok, error, lapsed).", "result"),
		LeaseRenewalTime: register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace,
			Name:    "host_lease_renewal_duration_seconds",
			Help:    "Round trip of one host lease renewal; near lease_ttl/2 it fails.",
			Buckets: fastBuckets})),
		LeasesLost: register(r, prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace,
			Name: "host_leases_lost_total",
			Help: "Times this host's lease lapsed (a pause, a partition, renewals too slow): every object it held stopped."})),
	}
}
