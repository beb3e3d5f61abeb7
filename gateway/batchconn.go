package gateway

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// batchConn lets a WebSocket writer put many frames on the wire with one write: between
// hold and release, what gorilla writes is buffered, and release sends it in one syscall.
// Outside a hold (a pong answered by the reader goroutine, say) writes go straight
// through. One frame per syscall per subscriber was the top cost of fan-out. The 64 KiB
// buffer is taken from a pool for the hold only: an idle connection holds none.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	held    bool
	buf     *bufio.Writer // set while held
	lastErr error

	deadline time.Time // the write deadline last set (under mu)
}

// batchBufs are the buffers of batchConns' holds.
var batchBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		return c.Conn.Write(p)
	}
	if c.lastErr != nil {
		return 0, c.lastErr
	}
	n, err := c.buf.Write(p)
	c.lastErr = err
	return n, err
}

// hold starts buffering.
func (c *batchConn) hold() {
	c.mu.Lock()
	c.held = true
	if c.buf == nil {
		c.buf = batchBufs.Get().(*bufio.Writer)
		c.buf.Reset(c.Conn)
	}
	c.mu.Unlock()
}

// release sends what was buffered and stops buffering.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if c.lastErr != nil {
		return c.lastErr
	}
	if c.buf != nil {
		c.lastErr = c.buf.Flush()
		if c.lastErr == nil {
			c.buf.Reset(nil)
			batchBufs.Put(c.buf)
			c.buf = nil
		}
	}
	return c.lastErr
}

// wrapHijack hands a WebSocket upgrader a wrapped connection when it hijacks: the server's
// buffered reader is kept (an upgrader refuses a handshake when it holds bytes read
// already), and the handshake's writes go through the wrapper too.
type wrapHijack struct {
	http.ResponseWriter
	wrap func(net.Conn) net.Conn
}

func (h *wrapHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := h.wrap(nc)
	brw.Writer.Reset(c)
	return c, brw, nil
}

// upgradeBatched upgrades like streamUpgrader.Upgrade and returns the batchConn under it.
func upgradeBatched(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *batchConn, error) {
	var bc *batchConn
	ws, err := streamUpgrader.Upgrade(&wrapHijack{w, func(nc net.Conn) net.Conn {
		bc = &batchConn{Conn: nc}
		return bc
	}}, r, nil)
	if err != nil {
		return nil, nil, err
	}
	return ws, bc, nil
}

// SetWriteDeadline passes a new deadline on. gorilla sets the connection's write deadline
// before every frame it writes, and the stream writer moves it once a second: passing the
// same value on each time cost more than a tenth of a fan-out's CPU (timer updates).
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Equal(c.deadline) {
		return nil
	}
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines; the write one is remembered as above.
func (c *batchConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}
