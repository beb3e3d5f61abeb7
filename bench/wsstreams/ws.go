package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/holdfast/holdfast/bench/internal/measure"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The two servers' wire formats, spoken directly over gorilla/websocket by one load
// generator: Holdfast's (docs/streams.md) and centrifuge's JSON protocol (one command or
// reply per line; a frame may hold several lines; an empty object is a ping, answered by one).

type system struct {
	name string
	// subURL and pubURL are the WebSocket URLs for a stream; hello is what a subscriber
	// sends after the upgrade (nil: nothing), answered by helloReplies replies.
	url      func(stream string, sub bool) string
	hello    func(stream string, sub bool) (frame []byte, replies int)
	publish  func(buf []byte, stream string, id uint64, data []byte) []byte
	isAck    func(line []byte) bool // a publish's answer
	isMsg    func(line []byte) bool // a delivered message
	ackFrame func(seq int64) []byte // nil: the system takes no acks
	ackEvery int64                  // ack after this many messages
	isPing   func(line []byte) bool // needs a pong
	pong     []byte
	isError  func(line []byte) bool
}

// holdfastSystem is Holdfast behind the gateways at addrs: the publisher uses the first,
// subscribers take them in turn. Window 0 leaves the subscribers' window to the server's
// default.
func holdfastSystem(name string, addrs []string, window, ackEvery int) *system {
	var next atomic.Uint64
	return &system{
		name: name,
		url: func(stream string, sub bool) string {
			if sub {
				addr := addrs[next.Add(1)%uint64(len(addrs))]
				if window > 0 {
					return fmt.Sprintf("ws://%s/v1/stream/%s?from=latest&window=%d", addr, stream, window)
				}
				return fmt.Sprintf("ws://%s/v1/stream/%s?from=latest", addr, stream)
			}
			return fmt.Sprintf("ws://%s/v1/stream/%s?from=latest&window=1", addrs[0], stream)
		},
		// As the Go and JS clients do by default: an idempotent producer (one per stream:
		// each scenario's stream has one publisher), numbering its publishes from 0.
		publish: func(buf []byte, stream string, id uint64, data []byte) []byte {
			buf = append(buf, `{"type":"publish","id":"`...)
			buf = strconv.AppendUint(buf, id, 10)
			buf = append(buf, `","data":`...)
			buf = append(buf, data...)
			if !producers {
				return append(buf, '}')
			}
			buf = append(buf, `,"producerId":"`...)
			buf = append(buf, producerPrefix...)
			buf = append(buf, stream...)
			buf = append(buf, `","producerEpoch":0,"producerSeq":`...)
			buf = strconv.AppendUint(buf, id-1, 10)
			return append(buf, '}')
		},
		isAck: func(l []byte) bool { return bytes.Contains(l, []byte(`"type":"published"`)) },
		isMsg: func(l []byte) bool { return bytes.HasPrefix(l, []byte(`{"type":"message"`)) },
		ackFrame: func(seq int64) []byte {
			return append(strconv.AppendInt([]byte(`{"type":"ack","seq":`), seq, 10), '}')
		},
		ackEvery: int64(max(ackEvery, 1)),
		isPing:   func([]byte) bool { return false },
		// The server writes an error frame's fields in any order.
		isError: func(l []byte) bool { return bytes.Contains(l, []byte(`"type":"error"`)) },
	}
}

func centrifugeSystem(addr string) *system {
	return &system{
		name: "centrifuge",
		url:  func(string, bool) string { return "ws://" + addr + "/connection/websocket" },
		hello: func(stream string, sub bool) ([]byte, int) {
			if !sub {
				return []byte(`{"id":1,"connect":{}}`), 1
			}
			return []byte(`{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"` + stream + `"}}`), 2
		},
		publish: func(buf []byte, stream string, id uint64, data []byte) []byte {
			buf = append(buf, `{"id":`...)
			buf = strconv.AppendUint(buf, id+10, 10) // ids 1 and 2 are the hello's
			buf = append(buf, `,"publish":{"channel":"`...)
			buf = append(buf, stream...)
			buf = append(buf, `","data":`...)
			buf = append(buf, data...)
			return append(buf, "}}"...)
		},
		isAck: func(l []byte) bool {
			return bytes.Contains(l, []byte(`"publish":{`)) && bytes.HasPrefix(l, []byte(`{"id":`))
		},
		isMsg: func(l []byte) bool {
			return bytes.HasPrefix(l, []byte(`{"push":`)) && bytes.Contains(l, []byte(`"pub":`))
		},
		isPing:  func(l []byte) bool { return len(l) == 2 && l[0] == '{' && l[1] == '}' },
		pong:    []byte(`{}`),
		isError: func(l []byte) bool { return bytes.Contains(l, []byte(`"error":{`)) },
	}
}

var dialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 2048}

// conn is one WebSocket with a write lock (the reader answers pings and sends acks while a
// publisher's writer sends publishes).
type conn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (c *conn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// dial opens a connection and, for a subscriber, sends the system's hello and waits for its
// replies.
func (s *system) dial(ctx context.Context, stream string, sub bool) (*conn, error) {
	ws, resp, err := dialer.DialContext(ctx, s.url(stream, sub), nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, fmt.Errorf("%w: %s %s", err, resp.Status, body)
		}
		return nil, err
	}
	c := &conn{ws: ws}
	if s.hello == nil {
		return c, nil
	}
	hello, replies := s.hello(stream, sub)
	if err := c.write(hello); err != nil {
		ws.Close()
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for got := 0; got < replies; {
		_, b, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, err
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if len(l) == 0 || s.isPing(l) {
				continue
			}
			if s.isError(l) {
				ws.Close()
				return nil, fmt.Errorf("%s hello: %s", s.name, l)
			}
			got++
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

// dialMany opens n subscriber connections, 64 at a time.
func (s *system) dialMany(ctx context.Context, stream string, n int) ([]*conn, error) {
	conns := make([]*conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := s.dial(ctx, stream, true)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("connection %d of %d: %w", i+1, n, err) })
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeAll(conns []*conn) {
	for _, c := range conns {
		if c != nil {
			c.ws.Close()
		}
	}
}

// subStats are what the subscribers of one scenario saw.
type subStats struct {
	delivered  atomic.Int64 // messages received by all subscribers
	recording  atomic.Bool  // keep latencies
	closed     atomic.Int64 // subscribers whose connection ended before the scenario did
	errors     atomic.Int64 // error frames
	firstSeen  []atomic.Bool
	firstCount atomic.Int64
}

// lockedSamples are one subscriber's latencies, read by the scenario while it runs.
type lockedSamples struct {
	mu sync.Mutex
	s  measure.Samples
}

// readSub runs a subscriber's read loop until its connection closes: counts messages, keeps
// their latency (now minus the payload's "t") while recording, acks and answers pings.
func (s *system) readSub(c *conn, i int, st *subStats, lat *lockedSamples, done *sync.WaitGroup, stopping *atomic.Bool) {
	defer done.Done()
	var sinceAck, lastSeq int64
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			if !stopping.Load() {
				st.closed.Add(1)
			}
			return
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r); err != nil {
			continue
		}
		now := time.Now().UnixNano()
		for _, l := range bytes.Split(buf.Bytes(), []byte("\n")) {
			switch {
			case len(l) == 0:
			case s.isMsg(l):
				st.delivered.Add(1)
				if !st.firstSeen[i].Swap(true) {
					st.firstCount.Add(1)
				}
				if t := intAfter(l, `"t":`); t > 0 && st.recording.Load() {
					lat.mu.Lock()
					lat.s.Add(time.Duration(now - t))
					lat.mu.Unlock()
				}
				if s.ackFrame != nil {
					lastSeq = intAfter(l, `"seq":`)
					sinceAck++
					if sinceAck >= s.ackEvery {
						sinceAck = 0
						_ = c.write(s.ackFrame(lastSeq))
					}
				}
			case s.isPing(l):
				_ = c.write(s.pong)
			case s.isError(l):
				st.errors.Add(1)
			}
		}
	}
}

// intAfter parses the decimal integer that follows key in l, or returns -1.
func intAfter(l []byte, key string) int64 {
	i := bytes.Index(l, []byte(key))
	if i < 0 {
		return -1
	}
	var n int64
	j := i + len(key)
	for ; j < len(l) && l[j] >= '0' && l[j] <= '9'; j++ {
		n = n*10 + int64(l[j]-'0')
	}
	if j == i+len(key) {
		return -1
	}
	return n
}

// payload is a ~128-byte JSON object carrying its send time in nanoseconds.
func payload(buf []byte) []byte {
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
	buf = append(buf, `,"p":"`...)
	for len(buf) < 126 {
		buf = append(buf, 'x')
	}
	return append(buf, `"}`...)
}

// pubResult is what a publisher achieved.
type pubResult struct {
	acked, errors int64
	elapsed       time.Duration
}

// publisher is a connection that publishes; one reader goroutine counts the answers for
// every run on it.
type publisher struct {
	*conn
	s           *system
	stream      string
	acked, errs atomic.Int64
	freed       chan struct{} // one per answer
	readErr     chan error
	sent        uint64
	frame, data []byte
}

const maxWindow = 1 << 16

func (s *system) dialPublisher(ctx context.Context, stream string) (*publisher, error) {
	c, err := s.dial(ctx, stream, false)
	if err != nil {
		return nil, err
	}
	p := &publisher{conn: c, s: s, stream: stream, freed: make(chan struct{}, maxWindow), readErr: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.ws.ReadMessage()
			if err != nil {
				p.readErr <- err
				return
			}
			for _, l := range bytes.Split(b, []byte("\n")) {
				switch {
				case len(l) == 0:
				case s.isPing(l):
					_ = c.write(s.pong)
				case s.isError(l):
					p.errs.Add(1)
					p.freed <- struct{}{}
				case s.isAck(l):
					p.acked.Add(1)
					p.freed <- struct{}{}
				}
			}
		}
	}()
	return p, nil
}

// run publishes for d, at most window unanswered (window ≤ 65536); rate > 0 paces the
// sends (open loop, from a schedule). It returns after the last answer, or with an error
// when answers stop for 10 s.
func (p *publisher) run(window int, rate float64, d time.Duration) (pubResult, error) {
	window = min(window, maxWindow)
	acked0, errs0, sent0 := p.acked.Load(), p.errs.Load(), p.sent
	inflight := 0
	begin := time.Now()
	end := begin.Add(d)
	for now := time.Now(); now.Before(end); now = time.Now() {
		if rate > 0 {
			due := begin.Add(time.Duration(float64(p.sent-sent0) / rate * float64(time.Second)))
			if wait := due.Sub(now); wait > 0 {
				time.Sleep(wait)
			}
		}
		for inflight >= window {
			select {
			case <-p.freed:
				inflight--
			case err := <-p.readErr:
				return pubResult{}, fmt.Errorf("%s publisher: %w", p.s.name, err)
			case <-time.After(10 * time.Second):
				return pubResult{}, errors.New(p.s.name + " publisher: no answer for 10 s")
			}
		}
		p.sent++
		inflight++
		p.data = payload(p.data[:0])
		p.frame = p.s.publish(p.frame[:0], p.stream, p.sent, p.data)
		if err := p.write(p.frame); err != nil {
			return pubResult{}, err
		}
	}
	for inflight > 0 {
		select {
		case <-p.freed:
			inflight--
		case err := <-p.readErr:
			return pubResult{}, fmt.Errorf("%s publisher: %w", p.s.name, err)
		case <-time.After(10 * time.Second):
			return pubResult{}, fmt.Errorf("%s publisher: %d publishes unanswered after 10 s", p.s.name, inflight)
		}
	}
	return pubResult{acked: p.acked.Load() - acked0, errors: p.errs.Load() - errs0, elapsed: time.Since(begin)}, nil
}

// producers: Holdfast publishes name an idempotent producer (-producers).
var producers = true

// producerPrefix makes this run's producer ids its own.
var producerPrefix = strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
