// Package objclient owns how a gateway reaches an object: it finds the owning host in a
// watched cache of the lease bucket, sends the request there over NATS, and follows
// "not owner" answers and vanished hosts through the activation queue until the object
// answers or the deadline passes.
package objclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

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

// send makes one request. When it goes to a known owner and the lease moves to another
// host (or lapses) while the answer is outstanding, the owner died or was paused: waiting
// for the full timeout would only delay the inevitable, so it gives up with ErrTimeout at
// once (never a retry: the request may have run).
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

// Owners is a cache of the lease bucket: object key to owning host. It is fed by a watch,
// so a request costs no KV read.
type Owners struct {
	mu       sync.RWMutex
	m        map[string]string
	watchers map[string][]*ownerWatch
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
// back (a KV delete, not a TTL expiry) leaves that owner alive to answer what it was
// sent, with its reply or "not owner" (a retry), so giving up on those requests would
// only turn a retry into a timeout.
func (o *Owners) record(key, host string, abort bool) {
	if host == "" {
		delete(o.m, key)
	} else {
		o.m[key] = host
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

// WatchOwners starts the cache; it lives until ctx ends.
func WatchOwners(ctx context.Context, leases jetstream.KeyValue) (*Owners, error) {
	w, err := leases.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	o := &Owners{m: map[string]string{}}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				host := ""
				if e.Operation() == jetstream.KeyValuePut {
					var l wire.Lease
					if json.Unmarshal(e.Value(), &l) == nil {
						host = l.Host
					}
				}
				o.mu.Lock()
				o.record(e.Key(), host, e.Operation() != jetstream.KeyValueDelete)
				o.mu.Unlock()
			}
		}
	}()
	return o, nil
}

// Lookup returns the cached owner of key, or "".
func (o *Owners) Lookup(key string) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.m[key]
}

func (o *Owners) learn(key, host string) {
	o.mu.Lock()
	o.set(key, host)
	o.mu.Unlock()
}

func (o *Owners) forget(key, host string) {
	o.mu.Lock()
	if o.m[key] == host {
		o.set(key, "")
	}
	o.mu.Unlock()
}
