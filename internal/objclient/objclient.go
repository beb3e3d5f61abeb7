// Package objclient owns how a gateway reaches an object: it finds the owning host in a
// watched cache of the object and host lease buckets, sends the request there over NATS, and follows
// "not owner" answers and vanished hosts through the activation queue until the object
// answers or the deadline passes.
package objclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors, for errors.Is.
var (
	// ErrNoHosts: no host serves the class.
	ErrNoHosts = errors.New("objclient: no object host serves this class")
	// ErrTimeout: the object did not answer in time; the request may or may not have run.
	ErrTimeout = errors.New("objclient: the object did not answer in time")
	// ErrUnavailable: the object could not be reached before the deadline; the request
	// did not run.
	ErrUnavailable = errors.New("objclient: object unavailable")
	// ErrCommitFailed: the object ran the request but could not commit its writes.
	ErrCommitFailed = errors.New("objclient: the object's writes were not committed")
	// ErrOverloaded: the object's queue is full.
	ErrOverloaded = errors.New("objclient: object overloaded")
	// ErrBadRequest: the host refused the request as malformed.
	ErrBadRequest = errors.New("objclient: bad request")
)

// Client sends requests to objects.
type Client struct {
	nc     *nats.Conn
	owners *Owners
}

// New returns a client; owners may be nil (every request then starts at the activation
// queue, which costs one redirect for active objects).
func New(nc *nats.Conn, owners *Owners) *Client { return &Client{nc: nc, owners: owners} }

// Request sends m (its headers already name class and name) and returns the object's
// reply. ctx bounds the whole exchange, retries included.
func (c *Client) Request(ctx context.Context, class, name string, m *nats.Msg) (*nats.Msg, error) {
	key := names.Key(class, name)
	owner := ""
	if c.owners != nil {
		owner = c.owners.Lookup(key)
	}
	backoff := 2 * time.Millisecond
	var last error
	for {
		if owner != "" {
			m.Subject = wire.HostSubject(owner)
		} else {
			m.Subject = wire.ActivateSubject(class)
		}
		reply, err := c.send(ctx, key, owner, m)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			if owner == "" {
				return nil, fmt.Errorf("%w: %s", ErrNoHosts, class)
			}
			// The owner is gone; its lease has not expired yet. Ask the queue again.
			c.forget(key, owner)
			owner, last = "", ErrUnavailable
		case err != nil:
			if ctx.Err() != nil {
				return nil, timeoutOr(last)
			}
			if errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionClosed) {
				// nats.go gives up the requests in flight when the connection drops: one
				// sent before may have run, so this is a timeout's "may or may not", not
				// the "unavailable" (never ran) the gateway would answer for other errors.
				return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
			}
			return nil, err
		default:
			code := reply.Header.Get(wire.HdrError)
			msg := reply.Header.Get(wire.HdrMessage)
			switch code {
			case "":
				if c.owners != nil && owner == "" && reply.Header.Get(wire.HdrHost) != "" {
					c.owners.learn(key, reply.Header.Get(wire.HdrHost))
				}
				return reply, nil
			case wire.ErrNotOwner:
				next := reply.Header.Get(wire.HdrOwner)
				if next == owner {
					next = ""
				}
				if owner != "" {
					c.forget(key, owner)
				}
				owner, last = next, ErrUnavailable
			case wire.ErrUnavailable:
				owner, last = "", fmt.Errorf("%w: %s", ErrUnavailable, msg)
			case wire.ErrCommitFailed:
				return nil, fmt.Errorf("%w: %s", ErrCommitFailed, msg)
			case wire.ErrOverloaded:
				return nil, ErrOverloaded
			case wire.ErrNoClass:
				return nil, fmt.Errorf("%w: %s", ErrNoHosts, msg)
			default:
				return nil, fmt.Errorf("%w: %s", ErrBadRequest, msg)
			}
		}
		select {
		case <-ctx.Done():
			return nil, timeoutOr(last)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}

// send makes one request. When it goes to a known owner and the object's lease moves to
// another host, or the owner's host lease expires, while the answer is outstanding, the
// owner died or was paused: waiting for the full timeout would only delay the inevitable,
// so it gives up with ErrTimeout at once (never a retry: the request may have run).
func (c *Client) send(ctx context.Context, key, owner string, m *nats.Msg) (*nats.Msg, error) {
	if owner == "" || c.owners == nil {
		return c.nc.RequestMsgWithContext(ctx, m)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := c.owners.onChange(key, owner, cancel)
	defer stop()
	reply, err := c.nc.RequestMsgWithContext(rctx, m)
	if err != nil && ctx.Err() == nil && rctx.Err() != nil {
		return nil, fmt.Errorf("%w: its owner changed while the request was outstanding", ErrTimeout)
	}
	return reply, err
}

func timeoutOr(last error) error {
	if last != nil {
		return last
	}
	return ErrTimeout
}

func (c *Client) forget(key, owner string) {
	if c.owners != nil {
		c.owners.forget(key, owner)
	}
}

// Owners is a cache of who owns what, fed by two watches so that a request costs no KV
// read: the object leases (object key → host; changes only, since the owner of anything
// older is learned from a reply) and the host leases (which hosts are live, with their
// epochs). When a host's lease expires, every object it owned is forgotten at once and
// every request in flight to it is given up.
type Owners struct {
	mu       sync.RWMutex
	m        map[string]string              // object key → host
	byHost   map[string]map[string]struct{} // host → its keys in m
	hosts    map[string]wire.HostLease      // live host leases by host id
	seen     map[string]bool                // hosts put during the current initial pass
	watchers map[string][]*ownerWatch
	gone     func(id string) // WatchConfig.OnHostGone
}

// WatchConfig says what WatchOwners watches.
type WatchConfig struct {
	Leases jetstream.KeyValue // wire.LeaseBucket
	Hosts  jetstream.KeyValue // wire.HostBucket
	Logger *slog.Logger
	// OnLease, when set, is told of every change to an object lease made after the watch
	// opened: its key, revision and value (a zero Lease when it was removed). It runs on
	// the watch's goroutine.
	OnLease func(key string, rev uint64, l wire.Lease)
	// OnHostGone, when set, is told of a host whose lease epoch ended (expired, deleted,
	// or replaced by a new epoch). It runs on the watch's goroutine.
	OnHostGone func(id string)
}

// ownerWatch cancels a request once when key's owner is no longer host.
type ownerWatch struct {
	host   string
	cancel context.CancelFunc
}

// onChange calls cancel when key's owner stops being host, until the returned function
// forgets the watch.
func (o *Owners) onChange(key, host string, cancel context.CancelFunc) func() {
	w := &ownerWatch{host: host, cancel: cancel}
	o.mu.Lock()
	if o.watchers == nil {
		o.watchers = map[string][]*ownerWatch{}
	}
	o.watchers[key] = append(o.watchers[key], w)
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		ws := o.watchers[key]
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(o.watchers, key)
		} else {
			o.watchers[key] = ws
		}
		o.mu.Unlock()
	}
}

// set records key's owner ("" for none) and fires the watches it invalidates. Called with
// o.mu held.
func (o *Owners) set(key, host string) { o.record(key, host, true) }

// record is set, firing the watches only when abort is set: a lease the owner handed
// back leaves that owner alive to answer what it was sent, with its reply or "not owner"
// (a retry), so giving up on those requests would only turn a retry into a timeout.
func (o *Owners) record(key, host string, abort bool) {
	if old, ok := o.m[key]; ok && old != host {
		if keys := o.byHost[old]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(o.byHost, old)
			}
		}
	}
	if host == "" {
		delete(o.m, key)
	} else {
		o.m[key] = host
		if o.byHost[host] == nil {
			o.byHost[host] = map[string]struct{}{}
		}
		o.byHost[host][key] = struct{}{}
	}
	if !abort {
		return
	}
	for _, w := range o.watchers[key] {
		if w.host != host {
			w.cancel() // idempotent
		}
	}
}

// dropHost forgets a host whose lease is gone and every object it owned. abort gives up
// the requests in flight to it: an expired lease means the host died or froze, whereas a
// host that deleted its lease stopped cleanly and has answered what it was sent. Called
// with o.mu held.
func (o *Owners) dropHost(id string, abort bool) {
	delete(o.hosts, id)
	for key := range o.byHost[id] {
		delete(o.m, key)
	}
	delete(o.byHost, id)
	if !abort {
		return
	}
	for _, ws := range o.watchers {
		for _, w := range ws {
			if w.host == id {
				w.cancel()
			}
		}
	}
}

// hostEntry applies a change to the host lease bucket.
func (o *Owners) hostEntry(e jetstream.KeyValueEntry) {
	id := e.Key()
	o.mu.Lock()
	old, was := o.hosts[id]
	ended := false // an epoch of id ended
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var hl wire.HostLease
		if json.Unmarshal(e.Value(), &hl) != nil {
			break
		}
		if o.seen != nil {
			o.seen[id] = true
		}
		if was && old.Epoch != hl.Epoch {
			// A new epoch without the old one's expiry in between (a watch that reopened):
			// the old epoch died all the same.
			o.dropHost(id, true)
			ended = true
		}
		o.hosts[id] = hl
	case jetstream.KeyValueDelete:
		o.dropHost(id, false)
		ended = was
	default:
		// A purge: the server's marker of an expired lease, or the cleanup after a delete
		// (the host is no longer live then, and had answered what it was sent).
		o.dropHost(id, was)
		ended = was
	}
	o.mu.Unlock()
	if ended {
		o.notifyGone(id)
	}
}

// WatchOwners starts the cache; it lives until ctx ends. It returns once the live hosts
// are known.
func WatchOwners(ctx context.Context, cfg WatchConfig) (*Owners, error) {
	o := &Owners{m: map[string]string{}, byHost: map[string]map[string]struct{}{}, hosts: map[string]wire.HostLease{}, gone: cfg.OnHostGone}
	hw, err := kvwatch.Start(ctx, cfg.Hosts, kvwatch.Config{
		What: "host leases", Logger: cfg.Logger,
		Begin: func() { o.mu.Lock(); o.seen = map[string]bool{}; o.mu.Unlock() },
		Entry: o.hostEntry,
		Synced: func() {
			var lapsed []string
			o.mu.Lock()
			for id := range o.hosts {
				if !o.seen[id] {
					o.dropHost(id, true) // lapsed while no watch ran
					lapsed = append(lapsed, id)
				}
			}
			o.seen = nil
			o.mu.Unlock()
			for _, id := range lapsed {
				o.notifyGone(id)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := hw.WaitSynced(ctx); err != nil {
		hw.Stop()
		return nil, err
	}
	_, err = kvwatch.Start(ctx, cfg.Leases, kvwatch.Config{
		What: "object leases", Logger: cfg.Logger, UpdatesOnly: true,
		Entry: func(e jetstream.KeyValueEntry) {
			var l wire.Lease
			if e.Operation() == jetstream.KeyValuePut {
				_ = json.Unmarshal(e.Value(), &l)
			}
			o.mu.Lock()
			// A lease taken by another host gives up requests in flight to the former one; a
			// lease handed back (purged or deleted) does not (record).
			o.record(e.Key(), l.Host, l.Host != "")
			o.mu.Unlock()
			if cfg.OnLease != nil {
				cfg.OnLease(e.Key(), e.Revision(), l)
			}
		},
	})
	if err != nil {
		hw.Stop()
		return nil, err
	}
	return o, nil
}

// Lookup returns the cached owner of key, or "".
func (o *Owners) Lookup(key string) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.m[key]
}

// Host returns host id's lease as last seen, and whether it is live.
func (o *Owners) Host(id string) (wire.HostLease, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	hl, ok := o.hosts[id]
	return hl, ok
}

// learn records an owner that answered. A host whose lease is not live is not recorded:
// its reply may have crossed the news of its expiry, and a cached dead owner would hold
// the next request with nothing left to give it up.
// LiveHosts returns the ids of the hosts whose lease is live.
func (o *Owners) LiveHosts() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	ids := make([]string, 0, len(o.hosts))
	for id := range o.hosts {
		ids = append(ids, id)
	}
	return ids
}

func (o *Owners) notifyGone(id string) {
	if o.gone != nil {
		o.gone(id)
	}
}

func (o *Owners) learn(key, host string) {
	o.mu.Lock()
	if _, live := o.hosts[host]; live || o.hosts == nil {
		o.set(key, host)
	}
	o.mu.Unlock()
}

func (o *Owners) forget(key, host string) {
	o.mu.Lock()
	if o.m[key] == host {
		o.set(key, "")
	}
	o.mu.Unlock()
}
