// Package runtime is the object host: it holds a host lease in JetStream KV and activates
// objects on demand under it (one entry per object naming the host's lease epoch), runs
// each one's events one at a time, commits their writes to the object's log with fenced,
// group-committed publishes, fires alarms, and hands sockets' messages to objects.
//
// One Host serves a set of classes. Any number of hosts may serve the same classes against
// one NATS cluster: the leases make exactly one of them the owner of a given object, and the
// log's conditional publishes refuse the writes of an owner that lost its lease. Renewing
// costs one write per host per TTL/4, whatever the number of objects active.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Host.
type Options struct {
	Classes []objects.Class
	// LeaseTTL is how long the host keeps its lease (and so its objects) without renewing;
	// a dead host's objects move after about this long. Whole seconds, at least 1s.
	// Default 2s.
	LeaseTTL time.Duration
	// IdleTimeout evicts an object that had no event for this long. Default 60s.
	IdleTimeout time.Duration
	// Vars are the deployment's [vars], readable by objects.
	Vars map[string]string
	// Namespaces maps binding names to classes, for objects calling objects.
	Namespaces map[string]string
	// RequestTimeout bounds one object's call to another. Default 30s.
	RequestTimeout time.Duration
	// Limits bound what one object may hold.
	Limits Limits
	// Replicas of every stream and bucket the host makes (the shared ones and each
	// object's message log), as cluster.Resolve decided; the CLI decides it at start.
	// 0 is 1.
	Replicas int
	Logger   *slog.Logger
	// ID names this host in leases; default a random NUID.
	ID string
	// ControlConn, when set, carries the control plane: the host lease's renewals and the
	// watches of leases and gateways, on a connection of their own so that a flood of
	// requests on the main one cannot delay them past the lease's TTL. Default: the main
	// connection.
	ControlConn *nats.Conn
	// Version is announced in the host lease (holdfast status).
	Version string
	// Metrics, when set, is where the host registers its Prometheus metrics
	// (internal/metrics; docs/operations.md lists them).
	Metrics prometheus.Registerer
}

// Limits bound an object's storage, sockets, queue and calls.
type Limits struct {
	MaxValueBytes      int // one storage value; default 128 KiB
	MaxStorageBytes    int // one object's keys plus values; default 4 MiB (a snapshot is one NATS message)
	MaxEventBytes      int // writes of one event; default 1 MiB
	MaxSockets         int // default 10,000
	MaxAttachmentBytes int // default 2048
	MaxQueue           int // events waiting for one object; default 10,000
	MaxCalls           int // Stub.Go calls out from one object; default 10,000
	MaxResponseBytes   int // one buffered Fetch response; default 4 MiB

	batchBytes int // set by fitPayload
}

func (l *Limits) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxValueBytes, 128<<10)
	def(&l.MaxStorageBytes, 4<<20)
	def(&l.MaxSockets, 10000)
	def(&l.MaxAttachmentBytes, 2048)
	def(&l.MaxQueue, 10000)
	def(&l.MaxCalls, 10000)
	def(&l.MaxResponseBytes, 4<<20)
	def(&l.MaxEventBytes, 1<<20)
}

// fitPayload lowers the limits so that every record, snapshot and reply fits in one NATS
// message of the server's max_payload (1 MiB by default on a standalone nats-server).
func (l *Limits) fitPayload(maxPayload int64) {
	room := wire.PayloadRoom(maxPayload)
	// A snapshot encodes every key and value with a few bytes of framing each.
	l.MaxStorageBytes = min(l.MaxStorageBytes, room*7/8)
	l.MaxResponseBytes = min(l.MaxResponseBytes, room)
	// A record holds one batch: taking stops at half the room, and one event adds at most
	// a quarter, so a record never outgrows the room (the rule is wire's).
	l.MaxEventBytes = min(l.MaxEventBytes, wire.MaxEventBytes(maxPayload))
	l.MaxValueBytes = min(l.MaxValueBytes, l.MaxEventBytes)
	l.batchBytes = room / 2
}

// Host serves objects.
type Host struct {
	opts    Options
	id      string
	nc      *nats.Conn
	js      jetstream.JetStream
	res     *cluster.Resources
	classes map[string]objects.Class
	log     *slog.Logger
	metrics *metrics.Host

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	renewing chan struct{} // closed once the host lease's renewals stopped
	started  atomic.Bool   // New has returned: background work may use every field

	mu       sync.Mutex
	insts    map[string]*instance
	closing  bool
	subs     []*nats.Subscription
	gateways *presence
	alarms   *alarmScheduler
	client   *objclient.Client // for objects calling objects
	owners   *objclient.Owners
	lease    *hostLease

	// skipLocalChecks lets tests show that the storage fence alone stops a former owner:
	// neither the local lease deadline nor the lease watch stops the instance first.
	skipLocalChecks bool
}

// New starts a host on nc: it ensures the shared resources and subscribes to its classes'
// activation subjects and its own subject.
func New(ctx context.Context, nc *nats.Conn, opts Options) (*Host, error) {
	if len(opts.Classes) == 0 {
		return nil, errors.New("runtime: no classes to serve")
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 2 * time.Second
	}
	if opts.LeaseTTL < time.Second || opts.LeaseTTL%time.Second != 0 {
		return nil, fmt.Errorf("runtime: lease TTL %v: want whole seconds, at least 1s", opts.LeaseTTL)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	opts.Limits.setDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ID == "" {
		opts.ID = nuid.Next()
	}
	h := &Host{
		opts: opts, id: opts.ID, nc: nc, classes: map[string]objects.Class{},
		insts: map[string]*instance{}, log: opts.Logger.With("host", opts.ID),
		metrics: metrics.NewHost(opts.Metrics),
	}
	for _, c := range opts.Classes {
		if err := names.ValidateClass(c.Name); err != nil {
			return nil, fmt.Errorf("runtime: class %q: %w", c.Name, err)
		}
		if c.New == nil {
			return nil, fmt.Errorf("runtime: class %q has no New", c.Name)
		}
		if _, dup := h.classes[c.Name]; dup {
			return nil, fmt.Errorf("runtime: class %q registered twice", c.Name)
		}
		h.classes[c.Name] = c
	}
	// The async publish timeout only frees futures that a stream electing a leader never
	// answers: appendLog (log.go) tries again after publishAttempt on its own.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(asyncPublishTimeout))
	if err != nil {
		return nil, err
	}
	h.js = js
	h.opts.Limits.fitPayload(nc.MaxPayload())
	if h.res, err = cluster.Ensure(ctx, js, cluster.Options{Replicas: opts.Replicas, Logger: h.log}); err != nil {
		return nil, err
	}
	ctrl := opts.ControlConn
	if ctrl == nil {
		ctrl = nc
	}
	cjs, err := jetstream.New(ctrl)
	if err != nil {
		return nil, err
	}
	cres, err := cluster.Bind(ctx, cjs)
	if err != nil {
		return nil, err
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if h.gateways, err = watchPresence(h.ctx, cres.Gateways, h.log, h.gatewayLost); err != nil {
		h.cancel()
		return nil, err
	}
	h.owners, err = objclient.WatchOwners(h.ctx, objclient.WatchConfig{
		Leases: cres.Leases, Hosts: cres.Hosts, Logger: h.log, OnLease: h.leaseChanged, OnHostGone: h.sweepHost,
	})
	if err != nil {
		h.cancel()
		return nil, err
	}
	h.client = objclient.New(nc, h.owners)
	h.lease = newHostLease(h, cjs, cres.Hosts)
	if err := h.lease.acquire(ctx, true); err != nil {
		h.cancel()
		return nil, err
	}
	h.renewing = make(chan struct{})
	go func() { defer close(h.renewing); h.lease.run(h.ctx) }()
	sub, err := nc.Subscribe(wire.HostSubject(h.id), h.dispatch)
	if err != nil {
		h.cancel()
		return nil, err
	}
	h.subs = append(h.subs, sub)
	for name := range h.classes {
		sub, err := nc.QueueSubscribe(wire.ActivateSubject(name), wire.ActivateQueue, h.dispatch)
		if err != nil {
			h.cancel()
			return nil, err
		}
		h.subs = append(h.subs, sub)
	}
	for _, s := range h.subs {
		// The dispatcher only enqueues; a deep pending queue is fine, dropping is not.
		_ = s.SetPendingLimits(-1, 512<<20)
	}
	if err := nc.Flush(); err != nil {
		h.cancel()
		return nil, err
	}
	h.alarms = startAlarmScheduler(h)
	h.started.Store(true)
	go h.sweepAtStart()
	h.log.Info("object host ready", "classes", len(h.classes), "lease_ttl", opts.LeaseTTL)
	return h, nil
}

// ID is this host's id, as leases name it.
func (h *Host) ID() string { return h.id }

// Ready says whether the host serves: nil while it reaches NATS and holds its lease,
// else what is missing (a health check's answer).
func (h *Host) Ready() error {
	h.mu.Lock()
	closing := h.closing
	h.mu.Unlock()
	switch {
	case closing:
		return errors.New("the object host is shutting down")
	case !h.nc.IsConnected():
		return errors.New("the object host is not connected to NATS")
	case h.lease.current() == "":
		return errNoHostLease
	}
	return nil
}

// Close stops taking requests, commits what is pending, and hands every object's entry and
// then the host lease back, so that the objects can move at once. It waits until ctx ends
// at most.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return nil
	}
	h.closing = true
	h.mu.Unlock()
	// Drain, not unsubscribe: an unsubscribed subscription drops the requests already on
	// their way to it, and their senders would wait out the request timeout. Drained
	// requests for active objects are served; any other is answered "not owner", which
	// the gateway retries elsewhere.
	for _, s := range h.subs {
		_ = s.Drain()
	}
	for _, s := range h.subs {
		for s.IsDraining() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	h.stopAll(stopShutdown)
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("runtime: close: %w", ctx.Err())
	}
	h.cancel()
	<-h.renewing
	if err == nil {
		// Every object has committed and handed its entry back: the lease goes too, so that
		// gateways forget this host at once. Objects still running (the deadline passed)
		// keep it until it expires.
		h.lease.release()
	}
	return err
}

// stopAll asks every active object to stop and returns how many there were.
func (h *Host) stopAll(r stopReason) int {
	insts := h.instances()
	for _, in := range insts {
		in.requestStop(r)
	}
	return len(insts)
}

// instances returns the active objects.
func (h *Host) instances() []*instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	insts := make([]*instance, 0, len(h.insts))
	for _, in := range h.insts {
		insts = append(insts, in)
	}
	return insts
}

// Active reports how many objects this host has active.
func (h *Host) Active() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.insts)
}

// dispatch routes one request to its instance, activating it when needed. It never blocks
// on the network: activation runs in the instance's goroutine.
func (h *Host) dispatch(m *nats.Msg) {
	class, name := m.Header.Get(wire.HdrClass), m.Header.Get(wire.HdrName)
	if _, ok := h.classes[class]; !ok {
		respond(m, wire.ErrorReply(wire.ErrNoClass, "this host does not serve class "+class))
		return
	}
	if err := names.Validate(name); err != nil {
		respond(m, wire.ErrorReply(wire.ErrBadRequest, err.Error()))
		return
	}
	key := names.Key(class, name)
	h.mu.Lock()
	in := h.insts[key]
	if in == nil && h.closing {
		h.mu.Unlock()
		h.metrics.Refusals.WithLabelValues(class, metrics.RefuseDraining).Inc()
		respond(m, wire.ErrorReply(wire.ErrNotOwner, "host is shutting down"))
		return
	}
	if in == nil {
		in = newInstance(h, class, name)
		h.insts[key] = in
		h.wg.Add(1)
		go in.run()
	}
	h.mu.Unlock()
	in.enqueue(event{msg: m})
}

// remove forgets in once it has stopped.
func (h *Host) remove(in *instance) {
	h.mu.Lock()
	if h.insts[in.key] == in {
		delete(h.insts, in.key)
	}
	h.mu.Unlock()
}

// gatewayLost tells every active object holding sockets on gateway gw that they are gone.
func (h *Host) gatewayLost(gw string) {
	for _, in := range h.instances() {
		in.enqueue(event{gatewayLost: gw})
	}
}

func respond(m *nats.Msg, reply *nats.Msg) {
	if m.Reply == "" {
		return
	}
	reply.Subject = m.Reply
	_ = m.RespondMsg(reply)
}
