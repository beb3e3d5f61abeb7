package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/internal/wire"
)

// connCounts counts the gateway's open client connections by transport, for its presence
// announcement (holdfast status). A request counts while its handler runs; a connection
// taken over from net/http (a WebSocket, a hijacked EventSource) counts until it is closed,
// however its handler returns.
type connCounts struct {
	n [len(transports)]atomic.Int64
}

// transports are the kinds counted, in wire.GatewayPresence.Connections, by index.
var transports = [...]string{kObjectSocket: wire.ConnObjectSocket, kStreamSocket: wire.ConnStreamSocket,
	kEventSource: wire.ConnEventSource, kLongPoll: wire.ConnLongPoll, kHTTP: wire.ConnHTTP}

const (
	kObjectSocket = iota
	kStreamSocket
	kEventSource
	kLongPoll
	kHTTP
)

// kindOf classifies r by how it will use its connection.
func kindOf(r *http.Request) int {
	if websocket.IsWebSocketUpgrade(r) {
		if strings.HasPrefix(r.URL.Path, "/v1/stream/") || strings.HasPrefix(r.URL.Path, "/stream/") {
			return kStreamSocket
		}
		return kObjectSocket
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return kEventSource
	}
	if strings.Contains(r.URL.RawQuery, "live=") {
		switch r.URL.Query().Get("live") {
		case "sse":
			return kEventSource
		case "long-poll":
			return kLongPoll
		}
	}
	return kHTTP
}

// track counts r from now on; done ends the count unless the connection was hijacked.
func (c *connCounts) track(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	k := kindOf(r)
	c.n[k].Add(1)
	cw := &countedWriter{ResponseWriter: w, end: func() { c.n[k].Add(-1) }}
	return cw, func() {
		if !cw.hijacked.Load() {
			cw.end()
		}
	}
}

// snapshot returns the counts by transport.
func (c *connCounts) snapshot() map[string]int {
	m := make(map[string]int, len(transports))
	for i, t := range transports {
		m[t] = int(c.n[i].Load())
	}
	return m
}

// countedWriter hands out a counted connection when its request is hijacked.
type countedWriter struct {
	http.ResponseWriter
	end      func()
	hijacked atomic.Bool
}

func (w *countedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countedWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *countedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked.Store(true)
	return &countedConn{Conn: nc, end: w.end}, brw, nil
}

// countedConn ends its count once, when closed. It passes the raw connection through for
// the socket writers' non-blocking writes.
type countedConn struct {
	net.Conn
	once sync.Once
	end  func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.end)
	return err
}

func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

var (
	_ http.Hijacker = (*countedWriter)(nil)
	_ http.Flusher  = (*countedWriter)(nil)
	_ syscall.Conn  = (*countedConn)(nil)
)
