package e2e

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// balancer is a TCP load balancer in front of the gateways, as a production deployment
// has one: each connection goes to the first backend, in its order of preference, whose
// /healthz answers 200 (a load balancer's readiness check: a gateway starting up listens
// and answers 503 until it reaches JetStream), else to the first that accepts it. A client
// whose gateway died or stopped reconnects to the same address and lands on another
// gateway. It records where every connection went.
type balancer struct {
	ln    net.Listener
	order []string // backend addresses, the preferred first

	mu     sync.Mutex
	conns  []lbConn
	open   map[net.Conn]bool // client connections being served
	closed bool
	wg     sync.WaitGroup
}

// lbConn is one client connection: the backend it reached ("" when none accepted it).
type lbConn struct {
	at      time.Time
	backend string
}

func startBalancer(t *testing.T, order ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, order: order, open: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *balancer) addr() string { return b.ln.Addr().String() }

func (b *balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.serve(c) }()
	}
}

// close stops accepting, ends every connection and waits for them.
func (b *balancer) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	b.closed = true
	for c := range b.open {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *balancer) serve(c net.Conn) {
	defer c.Close()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.open[c] = true
	b.mu.Unlock()
	defer func() { b.mu.Lock(); delete(b.open, c); b.mu.Unlock() }()
	var up net.Conn
	rec := lbConn{at: time.Now()}
	for _, ready := range []bool{true, false} {
		for _, addr := range b.order {
			if up != nil || ready && !healthy(addr) {
				continue
			}
			var err error
			if up, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				rec.backend = addr
			}
		}
	}
	b.mu.Lock()
	b.conns = append(b.conns, rec)
	b.mu.Unlock()
	if up == nil {
		return
	}
	defer up.Close()
	// Either side ending ends both: a dead gateway's connections end for its clients.
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// healthz is the balancer's readiness check.
var healthz = &http.Client{Timeout: 500 * time.Millisecond}

func healthy(addr string) bool {
	resp, err := healthz.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// backends lists the backend of every connection so far, in order.
func (b *balancer) backends() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, len(b.conns))
	for i, c := range b.conns {
		out[i] = c.backend
	}
	return out
}
