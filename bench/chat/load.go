package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The load generator: the same clients, frames and measurement for every server.

type bench struct {
	cfg     config
	base    string
	clients []*client

	measureFrom, measureTo atomic.Int64
	hist                   histogram
	sent, delivered        atomic.Int64 // in the window
	errors, closed         atomic.Int64
	cpu                    float64 // CPU seconds this process used in the window
	cores                  string  // this process's and the rest of the machine's cores
}

type client struct {
	b    *bench
	id   int
	conn *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
}

// connect dials every client, a few at a time, and joins it to its room.
func (b *bench) connect() error {
	b.clients = make([]*client, b.cfg.clients)
	var wg sync.WaitGroup
	errs := make(chan error, b.cfg.clients)
	sem := make(chan struct{}, 32)
	for i := range b.cfg.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := b.dial(i)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			b.clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range b.clients {
			if c != nil {
				_ = c.conn.Close()
			}
		}
		return err
	}
	return nil
}

func (b *bench) dial(i int) (*client, error) {
	room := fmt.Sprint("bench-room-", i%b.cfg.rooms)
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	conn, _, err := d.Dial(b.base+"/api/room/"+room+"/websocket", http.Header{"X-Forwarded-For": {ip}})
	if err != nil {
		return nil, err
	}
	if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"name":"u%d"}`, i)); err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range 10000 {
		_, m, err := conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		if bytes.Equal(m, []byte(`{"ready":true}`)) {
			_ = conn.SetReadDeadline(time.Time{})
			c := &client{b: b, id: i, conn: conn, done: make(chan struct{})}
			go c.readLoop()
			return c, nil
		}
	}
	return nil, errors.New("no ready frame")
}

func (c *client) sendLoop(interval time.Duration, stop <-chan struct{}) {
	// Spread the clients' sends evenly over the interval.
	t := time.NewTimer(time.Duration(rand.Int64N(int64(interval))))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		if from, to := c.b.measureFrom.Load(), c.b.measureTo.Load(); from != 0 && now >= from && (to == 0 || now <= to) {
			c.b.sent.Add(1)
		}
		msg := fmt.Appendf(nil, `{"message":"%d"}`, now)
		c.wmu.Lock()
		err := c.conn.WriteMessage(websocket.TextMessage, msg)
		c.wmu.Unlock()
		if err != nil {
			return
		}
		t.Reset(interval)
	}
}

// readLoop records the latency of every message whose send time lies in the window.
func (c *client) readLoop() {
	defer close(c.done)
	marker := []byte(`"message":"`)
	// One buffer for every read: the clients share the cores with the server, so their
	// garbage would be charged to the system under test.
	buf := make([]byte, 0, 4096)
	for {
		_, r, err := c.conn.NextReader()
		if err == nil {
			buf = buf[:0]
			for err == nil && len(buf) < 1<<20 {
				if len(buf) == cap(buf) {
					buf = append(buf, 0)[:len(buf)]
				}
				var n int
				n, err = r.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		m := buf
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				c.b.closed.Add(1)
			}
			return
		}
		now := time.Now().UnixNano()
		i := bytes.Index(m, marker)
		if i < 0 {
			if bytes.Contains(m, []byte(`"error"`)) {
				c.b.errors.Add(1)
			}
			continue
		}
		rest := m[i+len(marker):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		sentAt, err := strconv.ParseInt(string(rest[:j]), 10, 64)
		if err != nil {
			continue
		}
		from, to := c.b.measureFrom.Load(), c.b.measureTo.Load()
		if from == 0 || sentAt < from || to != 0 && sentAt > to {
			continue
		}
		c.b.delivered.Add(1)
		c.b.hist.record(time.Duration(now - sentAt))
	}
}

func (b *bench) pendingDeliveries() int64 {
	perRoom := int64(b.cfg.clients / b.cfg.rooms)
	return b.sent.Load()*perRoom - b.delivered.Load()
}

func (b *bench) closeAll() {
	for _, c := range b.clients {
		c.wmu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.conn.Close()
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// histogram counts latencies in 10 µs buckets up to 2 s and 1 ms buckets from there to
// 62 s (the last bucket takes the rest): cheap enough to record 100,000 samples a second
// from many goroutines, and a saturated run still reports its real tail rather than the
// top of a short range.
type histogram struct {
	fine   [fineBuckets]atomic.Int64
	coarse [coarseBuckets]atomic.Int64
	max    atomic.Int64
	n      atomic.Int64
}

const (
	fineWidth     = 10 * time.Microsecond
	fineBuckets   = 200000 // to 2 s
	coarseWidth   = time.Millisecond
	coarseBuckets = 60000 // 2 s to 62 s
	fineRange     = fineWidth * fineBuckets
)

func (h *histogram) record(d time.Duration) {
	switch {
	case d < 0:
		h.fine[0].Add(1)
	case d < fineRange:
		h.fine[d/fineWidth].Add(1)
	default:
		h.coarse[min(int((d-fineRange)/coarseWidth), coarseBuckets-1)].Add(1)
	}
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile is the upper bound of the bucket holding the q-th sample.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.fine {
		if seen += h.fine[i].Load(); seen >= want {
			return time.Duration(i+1) * fineWidth
		}
	}
	for i := range h.coarse {
		if seen += h.coarse[i].Load(); seen >= want {
			return min(fineRange+time.Duration(i+1)*coarseWidth, time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}
