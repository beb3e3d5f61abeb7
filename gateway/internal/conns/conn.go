package conns

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrClosed is returned for writes to a connection that is closing or closed.
var ErrClosed = errors.New("conns: connection closed")

// Conn is one client connection's outgoing side: a byte-bounded queue of messages already
// in wire form, written by the hub's flusher. It sits under melody (for a WebSocket) as
// the net.Conn gorilla writes its handshake and control frames through, so that those and
// the gateway's frames share one buffer and never interleave.
//
// Until Ready (a WebSocket's handshake is out), messages wait in a queue of their own: a
// subscription's first replay, an object's first sends, may come before the upgrade.
type Conn struct {
	nc    net.Conn // the hijacked connection; nil for one a handler drains (ServeResponse)
	hub   *Hub
	kind  Kind
	t     Transport
	raw   syscall.RawConn
	max   int
	dirty atomic.Bool // in the flusher's list
	// attached: on its socket, written by the flusher; served: its handler writes it.
	attached, served atomic.Bool
	sent             atomic.Bool // sent something since the heartbeat wheel last looked
	slot             int         // heartbeat wheel slot, under wheel.mu

	mu    sync.Mutex
	cond  sync.Cond // signals writing, blocked or the queue changing
	buf   []byte    // waiting to be written (a pooled buffer, buffers.go)
	keep  int       // leading bytes of buf that end a frame already partly written
	pre   []byte    // queued before Ready
	ready bool
	// writing: one goroutine owns the connection's writes and loops until buf is empty;
	// blocked: that goroutine waits for the connection to take more (not the flusher).
	writing, blocked bool
	closing          bool // the connection's end (a close frame) is queued: nothing follows it
	closed           bool // the socket is closed
	err              error
	wantDrain        bool
	slow             bool // closed as a slow consumer
	onDrain          func()
	onEnd            []func()
	ended            bool
}

// NewConn admits a connection of kind, not accepted yet: it takes messages, which wait
// until it is (AcceptWebSocket, AcceptSSE, ServeResponse) and Ready. One that is never
// accepted is let go with Discard.
func (h *Hub) NewConn(kind Kind) *Conn {
	var t Transport = WebSocket{}
	if kind == EventSource || kind == StreamSSE {
		t = SSE{Chunked: true}
	}
	c := &Conn{hub: h, kind: kind, t: t, max: h.cfg.QueueBytes}
	c.cond.L = &c.mu
	h.admit(kind)
	h.register(c)
	return c
}

// attach puts c on its socket.
func (c *Conn) attach(nc net.Conn) {
	c.mu.Lock()
	c.nc = nc
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.mu.Unlock()
	c.attached.Store(true)
}

// Discard lets go of a connection that was never accepted.
func (c *Conn) Discard() {
	c.mu.Lock()
	c.closing, c.closed = true, true
	c.pre, c.buf = nil, nil
	c.mu.Unlock()
	c.end()
}

// Kind is what the connection serves.
func (c *Conn) Kind() Kind { return c.kind }

// Send queues one message: a text frame, an event of an event stream. False: the
// connection is closing, or was just closed as a slow consumer.
func (c *Conn) Send(p []byte) bool { return c.send(p, false) }

// SendBinary queues one binary frame (WebSocket).
func (c *Conn) SendBinary(p []byte) bool { return c.send(p, true) }

func (c *Conn) send(p []byte, binary bool) bool {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return false
	}
	n := c.t.MessageLen(len(p))
	if len(c.buf)+len(c.pre)+n > c.max {
		c.overflowLocked()
		c.mu.Unlock()
		c.schedule()
		return false
	}
	if c.ready {
		c.buf = c.t.AppendMessage(grow(c.buf, n), p, binary)
	} else {
		c.pre = c.t.AppendMessage(grow(c.pre, n), p, binary)
	}
	ready := c.ready
	c.mu.Unlock()
	c.hub.sent[c.kind].Inc()
	c.sent.Store(true)
	if ready {
		c.schedule()
	}
	return true
}

// Room is how many more bytes of messages (in wire form) the queue takes before its bound.
func (c *Conn) Room() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max - len(c.buf) - len(c.pre)
}

// Queued is how many bytes wait to be written.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf) + len(c.pre)
}

// WantDrain asks for the drain callback (SetOnDrain) once the queue is written out: a
// sender that stopped for room (a subscriber reading back the ring) goes on then. The
// callback never runs on the caller's goroutine (it may hold the locks the callback takes).
func (c *Conn) WantDrain() {
	c.mu.Lock()
	c.wantDrain = true
	empty := len(c.buf) == 0 && len(c.pre) == 0 && !c.writing && c.ready
	if empty {
		c.wantDrain = false
	}
	c.mu.Unlock()
	if empty {
		go c.drained()
	}
}

// SetOnDrain sets the drain callback; it runs on the writing goroutine, with no lock of
// the connection held.
func (c *Conn) SetOnDrain(fn func()) {
	c.mu.Lock()
	c.onDrain = fn
	c.mu.Unlock()
}

// OnEnd calls fn once the connection has ended (at once when it has).
func (c *Conn) OnEnd(fn func()) {
	c.mu.Lock()
	if !c.ended {
		c.onEnd = append(c.onEnd, fn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	fn()
}

// Ready lets what was queued before go out, after what the connection wrote itself (a
// WebSocket's handshake).
func (c *Conn) Ready() {
	c.mu.Lock()
	c.ready = true
	c.buf = append(grow(c.buf, len(c.pre)), c.pre...)
	putBuf(c.pre)
	c.pre = nil
	c.mu.Unlock()
	c.schedule()
}

// overflowLocked is the slow-consumer policy (under mu): what is queued and not started is
// dropped, the end is queued, and the connection closes once that is written.
func (c *Conn) overflowLocked() {
	if c.ready {
		c.buf = c.t.AppendClose(c.buf[:c.keep], CloseSlowConsumer, SlowConsumerReason)
	} else {
		c.pre = c.t.AppendClose(c.pre[:0], CloseSlowConsumer, SlowConsumerReason)
	}
	c.closing, c.slow = true, true
	c.hub.slow.Add(1)
	c.hub.slowBy[c.kind].Inc()
}

// SlowConsumer reports whether the connection was closed as a slow consumer.
func (c *Conn) SlowConsumer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slow
}

// Close queues the connection's end after what is queued (a close frame with code and
// reason; the end of an event stream), then closes it once that is written, or after the
// hub's write timeout when the client does not read.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return
	}
	c.closing = true
	if c.ready {
		c.buf = c.t.AppendClose(c.buf, code, reason)
	} else {
		c.pre = c.t.AppendClose(c.pre, code, reason) // after the handshake, at Ready
	}
	c.mu.Unlock()
	c.schedule()
}

// schedule hands c to its writer: the flusher, or the handler serving its response.
func (c *Conn) schedule() {
	switch {
	case c.served.Load():
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	case c.attached.Load():
		c.hub.flusher.add(c)
	}
}

// writeRaw is gorilla's Write (wireConn): the handshake's response and control frames
// (pongs, melody's pings and close frames). It returns once the bytes are written or
// handed to the goroutine writing this connection.
func (c *Conn) writeRaw(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed || c.err != nil {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	c.buf = append(grow(c.buf, len(p)), p...)
	c.mu.Unlock()
	c.flush(true)
	return len(p), nil
}

// flush writes what is buffered unless another goroutine already owns the writes (it
// loops until the buffer is empty, so nothing is stranded). Without block it never
// waits: what the connection cannot take now goes to a goroutine of its own.
func (c *Conn) flush(block bool) {
	c.mu.Lock()
	if c.writing || c.closed || c.err != nil || len(c.buf) == 0 {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.drain(block)
}

// drain writes until the buffer is empty; c.mu is held on entry and released on return.
func (c *Conn) drain(block bool) {
	for len(c.buf) > 0 && c.err == nil && !c.closed {
		out := c.buf
		c.buf, c.keep = nil, 0
		c.mu.Unlock()
		var n int
		var err error
		if block {
			n, err = c.writeWithin(out, c.hub.cfg.WriteTimeout)
		} else {
			n, err = c.tryWrite(out)
		}
		c.mu.Lock()
		if err == nil && n < len(out) {
			// The connection is full: keep the rest in front of what came since, and let a
			// goroutine of its own wait for it.
			rest := append(getBuf(len(out)-n+len(c.buf)), out[n:]...)
			c.keep = len(rest)
			rest = append(rest, c.buf...)
			putBuf(c.buf)
			putBuf(out)
			c.buf = rest
			c.blocked = true
			c.cond.Broadcast()
			c.mu.Unlock()
			go c.waitWritable()
			return
		}
		if err != nil {
			c.err = err
			break
		}
		putBuf(out)
	}
	c.writing, c.blocked = false, false
	c.cond.Broadcast()
	finished := c.closing && c.ready && len(c.buf) == 0 || c.err != nil
	drained := c.wantDrain && len(c.buf) == 0 && !c.closing
	if drained {
		c.wantDrain = false
	}
	c.mu.Unlock()
	if finished {
		c.closeSocket()
	} else if drained {
		c.drained()
	}
}

// drained runs the drain callback.
func (c *Conn) drained() {
	c.mu.Lock()
	fn := c.onDrain
	c.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// waitWritable finishes the writes of a connection that could not take them at once. It
// stays blocked until done, so Close does not wait for a client that does not read.
func (c *Conn) waitWritable() {
	c.mu.Lock()
	c.drain(true)
}

// writeWithin writes p, waiting at most d. The deadline is cleared after: a raw write
// fails at once while an expired one is set.
func (c *Conn) writeWithin(p []byte, d time.Duration) (int, error) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	n, err := c.nc.Write(p)
	_ = c.nc.SetWriteDeadline(time.Time{})
	return n, err
}

// tryWrite writes what the connection takes now without waiting: n < len(p) with a nil
// error means it is full.
func (c *Conn) tryWrite(p []byte) (int, error) {
	if c.raw == nil {
		// Not a socket (a test's pipe, say): an ordinary write.
		return c.writeWithin(p, c.hub.cfg.WriteTimeout)
	}
	n := 0
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				return true
			}
			if err != nil {
				werr = err
				return true
			}
			if m == 0 {
				werr = syscall.EIO
				return true
			}
		}
		return true
	})
	if werr == nil {
		werr = err
	}
	return n, werr
}

// closeNow is the net.Conn's Close (gorilla's and melody's, at the session's end): it sends
// what is buffered (a close frame, say) first, unless the client is not reading: then it
// closes at once.
func (c *Conn) closeNow() error {
	c.mu.Lock()
	for c.writing && !c.blocked {
		c.cond.Wait()
	}
	if !c.closed && !c.writing && c.err == nil && len(c.buf) > 0 {
		out := c.buf
		c.buf = nil
		c.writing = true
		c.mu.Unlock()
		_, _ = c.writeWithin(out, closeWait)
		c.mu.Lock()
		c.writing = false
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	return c.closeSocket()
}

// closeSocket closes the socket once and ends the connection.
func (c *Conn) closeSocket() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	var err error
	if c.nc != nil {
		err = c.nc.Close()
	}
	c.end()
	return err
}

// end runs once the connection is over: it no longer counts, and OnEnd's callbacks run.
func (c *Conn) end() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	fns := c.onEnd
	c.onEnd = nil
	c.mu.Unlock()
	c.hub.open[c.kind].Add(-1)
	c.hub.unregister(c)
	c.hub.wheel.remove(c)
	if len(fns) > 0 {
		// Not on the flusher's goroutine, which may be the one ending it.
		go func() {
			for _, fn := range fns {
				fn()
			}
		}()
	}
}

// wireConn is the net.Conn gorilla (under melody) reads and writes: reads go to the socket,
// writes into the connection's queue, and Close sends what is queued first.
type wireConn struct {
	net.Conn
	c *Conn
}

func (w wireConn) Write(p []byte) (int, error) { return w.c.writeRaw(p) }
func (w wireConn) Close() error                { return w.c.closeNow() }

// SetWriteDeadline ignores gorilla's and melody's write deadlines: every write here is
// bounded by writeWithin's own, and a raw write fails at once under an expired one.
func (w wireConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets only the read deadline, as SetWriteDeadline explains.
func (w wireConn) SetDeadline(t time.Time) error { return w.Conn.SetReadDeadline(t) }

// ServeResponse writes the connection's queue to w until the connection closes or ctx
// ends, for an event stream served by its handler (one that cannot be hijacked: HTTP/2).
func (c *Conn) ServeResponse(ctx context.Context, w http.ResponseWriter) {
	c.mu.Lock()
	c.t, c.ready = SSE{}, true
	c.served.Store(true)
	c.buf = append(c.buf, c.pre...)
	c.pre = nil
	c.mu.Unlock()
	c.hub.wheel.add(c)
	fl, _ := w.(http.Flusher)
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.closing = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	defer c.closeSocket()
	c.mu.Lock()
	for {
		for len(c.buf) == 0 && !c.closing && !c.closed {
			c.cond.Wait()
		}
		out := c.buf
		c.buf = nil
		closing := c.closing || c.closed
		c.mu.Unlock()
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if closing || ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		drained := c.wantDrain && len(c.buf) == 0
		if drained {
			c.wantDrain = false
			c.mu.Unlock()
			c.drained()
			c.mu.Lock()
		}
	}
}

// Done reports whether the connection has ended.
func (c *Conn) Done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}
