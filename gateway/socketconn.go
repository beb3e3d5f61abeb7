package gateway

import (
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// socketConn sits under an object socket's melody session and carries the object's
// messages itself. melody queues each message on a channel for a per-session goroutine
// that writes it with one syscall: a broadcast to 100 members woke 100 goroutines, and
// those writes were the top cost of a chat room. Here the gateway encodes the frame
// (a server's frames are not masked, so one broadcast is the same bytes for every member),
// appends it to each member's buffer, and one flusher goroutine writes every buffer that
// has something, without blocking. What piles up while it writes leaves together in the
// next write, so the busier the gateway, the fewer syscalls per frame.
//
// melody still owns the connection: the upgrade, the read pump, pings and the close
// handshake; gorilla's writes (one frame per Write) go through the same buffer, so frames
// never interleave. A connection that cannot take more bytes now is handed to a goroutine
// of its own that waits for it, under a write deadline; one that falls too far behind is
// closed as a slow consumer.
type socketConn struct {
	net.Conn
	raw   syscall.RawConn
	dirty atomic.Bool // in the flusher's list
	mu    sync.Mutex
	cond  sync.Cond // signals writing or blocked changing
	buf   []byte    // waiting to be written
	spare []byte    // the last written buffer, reused
	// writing: one goroutine owns the connection's writes and loops until buf is empty;
	// blocked: that goroutine waits for the connection to take more (not the flusher).
	writing, blocked, closed bool
	err                      error
}

const (
	// maxSocketBuffered bounds what waits for one client: more and it is a slow consumer.
	maxSocketBuffered = 1 << 20
	// socketWriteWait bounds a blocked write, as melody's WriteWait did.
	socketWriteWait = 10 * time.Second
	// socketCloseWait bounds the last write before a close.
	socketCloseWait = time.Second
	// maxSpare is the largest written buffer kept for reuse.
	maxSpare = 4 << 10
)

var errSlowConsumer = errors.New("socket buffer full")

func newSocketConn(nc net.Conn) *socketConn {
	c := &socketConn{Conn: nc}
	c.cond.L = &c.mu
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// Write is gorilla's: the handshake's response and control frames. It returns once the
// bytes are written or handed to the goroutine writing this connection.
func (c *socketConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed || c.err != nil {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	c.flush(true)
	return len(p), nil
}

// appendFrame queues one data frame; the caller then hands c to the flusher.
func (c *socketConn) appendFrame(hdr, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.err != nil {
		return net.ErrClosed
	}
	if len(c.buf)+len(hdr)+len(data) > maxSocketBuffered {
		return errSlowConsumer
	}
	c.buf = append(c.buf, hdr...)
	c.buf = append(c.buf, data...)
	return nil
}

// frameHeader is a server frame's header (FIN set, no mask) for a payload of n bytes.
func frameHeader(dst []byte, binaryFrame bool, n int) []byte {
	op := byte(0x1)
	if binaryFrame {
		op = 0x2
	}
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return dst
}

// flush writes what is buffered unless another goroutine already owns the writes (it
// loops until the buffer is empty, so nothing is stranded). Without block it never
// waits: what the connection cannot take now goes to a goroutine of its own.
func (c *socketConn) flush(block bool) {
	c.mu.Lock()
	if c.writing || c.closed || c.err != nil || len(c.buf) == 0 {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.drain(block)
}

// drain writes until the buffer is empty; c.mu is held on entry and released on return.
func (c *socketConn) drain(block bool) {
	for len(c.buf) > 0 && c.err == nil && !c.closed {
		out := c.buf
		c.buf, c.spare = c.spare[:0], nil // the spare backs c.buf now
		c.mu.Unlock()
		var n int
		var err error
		if block {
			n, err = c.writeWithin(out, socketWriteWait)
		} else {
			n, err = c.tryWrite(out)
		}
		c.mu.Lock()
		if err == nil && n < len(out) {
			// The connection is full: keep the rest in front of what came since, and let a
			// goroutine of its own wait for it.
			rest := append(make([]byte, 0, len(out)-n+len(c.buf)), out[n:]...)
			c.buf = append(rest, c.buf...)
			c.blocked = true
			c.cond.Broadcast()
			c.mu.Unlock()
			go c.waitWritable()
			return
		}
		if err != nil {
			c.err = err
			// The read pump fails next, and melody tells the object.
			_ = c.Conn.Close()
			break
		}
		// The written buffer is the next spare; a large one (a history sent on join, say)
		// is left to the collector, so an idle socket keeps at most two small buffers.
		if cap(out) <= maxSpare {
			c.spare = out[:0]
		}
	}
	c.writing, c.blocked = false, false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// waitWritable finishes the writes of a connection that could not take them at once. It
// stays blocked until done, so Close does not wait for a client that does not read.
func (c *socketConn) waitWritable() {
	c.mu.Lock()
	c.drain(true)
}

// writeWithin writes p, waiting at most d. The deadline is cleared after: a raw write
// fails at once while an expired one is set.
func (c *socketConn) writeWithin(p []byte, d time.Duration) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
	n, err := c.Conn.Write(p)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	return n, err
}

// SetWriteDeadline ignores gorilla's and melody's write deadlines: every write here is
// bounded by writeWithin's own, and a raw write fails at once under an expired one.
func (c *socketConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets only the read deadline, as SetWriteDeadline explains.
func (c *socketConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// tryWrite writes what the connection takes now without waiting: n < len(p) with a nil
// error means it is full.
func (c *socketConn) tryWrite(p []byte) (int, error) {
	if c.raw == nil {
		// Not a socket (a test's pipe, say): an ordinary write.
		return c.writeWithin(p, socketWriteWait)
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

// Close sends what is buffered (a close frame, say) before closing, unless the client is
// not reading: then it closes at once.
func (c *socketConn) Close() error {
	c.mu.Lock()
	for c.writing && !c.blocked {
		c.cond.Wait()
	}
	if !c.closed && !c.writing && c.err == nil && len(c.buf) > 0 {
		out := c.buf
		c.buf = nil
		c.writing = true
		c.mu.Unlock()
		_, _ = c.writeWithin(out, socketCloseWait)
		c.mu.Lock()
		c.writing = false
		c.cond.Broadcast()
	}
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

// flusher writes the connections that have frames waiting, from one goroutine: a
// broadcast costs one wake-up, not one per member.
type flusher struct {
	mu    sync.Mutex
	conns []*socketConn
	wake  chan struct{}
}

func newFlusher() *flusher { return &flusher{wake: make(chan struct{}, 1)} }

// add hands c to the flusher; a connection already waiting is not added twice.
func (f *flusher) add(c *socketConn) {
	if c.dirty.Swap(true) {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
}

// kick wakes the flusher after a batch of adds.
func (f *flusher) kick() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run flushes until done closes.
func (f *flusher) run(done <-chan struct{}) {
	var batch []*socketConn
	for {
		select {
		case <-done:
			return
		case <-f.wake:
		}
		f.mu.Lock()
		batch, f.conns = f.conns, batch[:0]
		f.mu.Unlock()
		for i, c := range batch {
			c.dirty.Store(false)
			c.flush(false)
			batch[i] = nil
		}
	}
}

// hijackSocket gives s the socketConn its session will write through, as the upgrader
// hijacks the connection (before the session starts).
func hijackSocket(w http.ResponseWriter, s *gwSocket) http.ResponseWriter {
	return &wrapHijack{w, func(nc net.Conn) net.Conn {
		c := newSocketConn(nc)
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
		return c
	}}
}
