package conns

import (
	"context"
	"sync"
)

// Draining: a gateway about to stop ends every connection it holds in a way its client
// takes as "reconnect now, elsewhere" rather than as a failure. A WebSocket gets a close
// frame with CloseServiceRestart (1012), an event stream the end of its body (an
// EventSource reconnects with its Last-Event-ID, a Durable Streams client from its last
// offset); a long-poll, which is no Conn, watches Draining and answers as at its timeout.
// A connection admitted while the hub drains is ended as soon as it is accepted.

// CloseServiceRestart closes a WebSocket of a draining gateway: the client reconnects at
// once (through its load balancer, to another gateway) and resumes where it was, without
// treating it as an error.
const CloseServiceRestart = 1012

// DrainReason is the close reason of a draining gateway's WebSockets.
const DrainReason = "gateway draining: reconnect"

// live is the hub's set of connections not ended yet, which Drain closes.
type live struct {
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	draining chan struct{} // closed when Drain begins
	empty    chan struct{} // closed once draining and no connection is left
}

func (l *live) init() {
	l.conns = map[*Conn]struct{}{}
	l.draining = make(chan struct{})
	l.empty = make(chan struct{})
}

// isDraining reports whether Drain began; l.mu is held.
func (l *live) isDraining() bool {
	select {
	case <-l.draining:
		return true
	default:
		return false
	}
}

// register adds c to the hub's live connections; one that comes while the hub drains is
// closed at once (its end goes out once it is accepted).
func (h *Hub) register(c *Conn) {
	l := &h.live
	l.mu.Lock()
	l.conns[c] = struct{}{}
	draining := l.isDraining()
	l.mu.Unlock()
	if draining {
		c.Close(CloseServiceRestart, DrainReason)
	}
}

// unregister removes an ended connection.
func (h *Hub) unregister(c *Conn) {
	l := &h.live
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.checkEmpty()
}

// checkEmpty closes empty once the hub drains and holds no connection; l.mu is held.
func (l *live) checkEmpty() {
	if len(l.conns) > 0 || !l.isDraining() {
		return
	}
	select {
	case <-l.empty:
	default:
		close(l.empty)
	}
}

// Draining is closed once the hub drains: what holds a client without a Conn (a
// long-poll) answers then.
func (h *Hub) Draining() <-chan struct{} { return h.live.draining }

// IsDraining reports whether the hub drains.
func (h *Hub) IsDraining() bool {
	h.live.mu.Lock()
	defer h.live.mu.Unlock()
	return h.live.isDraining()
}

// Drain ends every connection, WebSockets with CloseServiceRestart, and every one admitted
// from now on, and waits until all have ended or ctx ends. It may be called more than once.
func (h *Hub) Drain(ctx context.Context) error {
	l := &h.live
	l.mu.Lock()
	if !l.isDraining() {
		close(l.draining)
	}
	all := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		all = append(all, c)
	}
	l.checkEmpty()
	l.mu.Unlock()
	for _, c := range all {
		c.Close(CloseServiceRestart, DrainReason)
	}
	select {
	case <-l.empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
