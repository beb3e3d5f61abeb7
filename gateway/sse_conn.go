package gateway

// An EventSource over HTTP/1.1 leaves net/http once its headers are decided: the handler
// hijacks the connection and returns, which frees net/http's connection, request, response,
// their buffers (~10 KB) and the handler's deep stack. What stays is one goroutine, blocked
// reading the socket to see the client leave. Writing (messages and heartbeats) happens in
// a goroutine started when there is something to write and gone when it is written: the
// stream's watch starts it after each append, a heartbeat wheel shared by all connections
// every heartbeat period. 10,000 idle EventSources held ~50 KB each before.

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// esConn is one hijacked EventSource connection.
type esConn struct {
	h       *httpStreams
	name    string
	nc      net.Conn
	render  esEvent
	wt      *dsWatch
	release func() // drops the watch
	done    func() // the caller's end of the stream, or nil
	ctx     context.Context
	cancel  context.CancelFunc
	slot    int // heartbeat wheel slot, under wheel.mu

	// The writer's position; only the (single) writer goroutine touches them.
	from  uint64
	seen  int
	after uint64 // a shared read may serve the writer if it started after this (esReads.seq)

	mu      sync.Mutex
	running bool // a writer goroutine runs
	again   bool // the stream changed (or the first read is due)
	beat    bool // a heartbeat is due
	closed  bool
}

// hijackEventSource takes an HTTP/1.1 EventSource off net/http, writes its headers and
// retry hint, and serves it from from (seen: messages of that record already sent). False
// (nothing written): the caller serves it in its handler (HTTP/2, or no hijacking).
func (h *httpStreams) hijackEventSource(w http.ResponseWriter, r *http.Request, name string, wt *dsWatch, release func(),
	from uint64, seen int, render esEvent, done func()) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	// What net/http would send: the headers set so far (CORS, content type), chunked.
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hd := w.Header()
	hd.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hd.Set("Transfer-Encoding", "chunked")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	writeChunk(&b, []byte("retry: "+strconv.Itoa(sseRetryMs)+"\n\n"))
	_ = nc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := nc.Write(b.Bytes()); err != nil {
		nc.Close()
		release()
		if done != nil {
			done()
		}
		return true
	}
	c := &esConn{h: h, name: name, nc: nc, render: render, wt: wt, release: release, done: done, from: from, seen: seen, again: true}
	c.ctx, c.cancel = context.WithCancel(h.g.ctx)
	context.AfterFunc(c.ctx, c.close) // the gateway's shutdown ends it
	wt.addConn(c)
	h.wheel().add(c)
	c.mu.Lock()
	c.kick()
	c.mu.Unlock()
	go c.read()
	return true
}

// writeChunk appends p to b as one chunk of a chunked body.
func writeChunk(b *bytes.Buffer, p []byte) {
	b.WriteString(strconv.FormatInt(int64(len(p)), 16))
	b.WriteString("\r\n")
	b.Write(p)
	b.WriteString("\r\n")
}

// read waits for the client to leave (an EventSource sends nothing after its request).
func (c *esConn) read() {
	var b [64]byte
	for {
		if _, err := c.nc.Read(b[:]); err != nil {
			c.close()
			return
		}
	}
}

// changed is the watch's news of an append.
func (c *esConn) changed() {
	c.mu.Lock()
	c.again = true
	c.kick()
	c.mu.Unlock()
}

// heartbeat is the wheel's: a heartbeat comment is due.
func (c *esConn) heartbeat() {
	c.mu.Lock()
	c.beat = true
	c.kick()
	c.mu.Unlock()
}

// kick starts the writer unless it runs (under mu).
func (c *esConn) kick() {
	if c.running || c.closed {
		return
	}
	c.running = true
	go c.write()
}

// write sends what is due, then exits.
func (c *esConn) write() {
	var buf bytes.Buffer
	for {
		c.mu.Lock()
		again, beat := c.again, c.beat
		c.again, c.beat = false, false
		if again {
			// A read to come must see what the news was about: only one started from now
			// on serves it.
			c.after = c.h.esReads.seq.Load()
		}
		if c.closed || !again && !beat {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		wrote := false
		if again {
			var ok bool
			if wrote, ok = c.catchUp(&buf); !ok {
				c.close()
				return
			}
		}
		if beat && !wrote {
			if !c.send([]byte(": heartbeat\n\n")) {
				c.close()
				return
			}
		}
	}
}

// catchUp sends every stored message from c.from on; wrote tells whether it sent any.
func (c *esConn) catchUp(buf *bytes.Buffer) (wrote, ok bool) {
	for {
		st, rd, err := c.h.esReads.read(c.ctx, c.h, c.name, c.from, c.after)
		if err != nil || st != http.StatusOK {
			return wrote, false
		}
		buf.Reset()
		for _, m := range rd.Msgs {
			msgs := jsonMessages(m)
			for i, msg := range msgs {
				if m.Seq == c.from && i <= c.seen {
					continue
				}
				c.render(buf, eventID(m.Seq, i, len(msgs)), msg)
			}
			c.seen = -1
		}
		if rd.Upto > c.from {
			c.from, c.seen = rd.Upto, -1
		}
		if buf.Len() > 0 {
			if !c.send(buf.Bytes()) {
				return wrote, false
			}
			wrote = true
		}
		if c.from >= rd.Next {
			return wrote, true
		}
	}
}

// send writes p as one chunk.
func (c *esConn) send(p []byte) bool {
	var b bytes.Buffer
	b.Grow(len(p) + 16)
	writeChunk(&b, p)
	_ = c.nc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := c.nc.Write(b.Bytes())
	return err == nil
}

// close ends the connection once; the writer, if running, stops at its next step.
func (c *esConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	_ = c.nc.Close()
	c.h.wheel().remove(c)
	c.wt.removeConn(c)
	c.release()
	if c.done != nil {
		c.done()
	}
}

// addConn registers c for news of appends; removeConn undoes it.
func (wt *dsWatch) addConn(c *esConn) {
	wt.mu.Lock()
	if wt.conns == nil {
		wt.conns = map[*esConn]struct{}{}
	}
	wt.conns[c] = struct{}{}
	wt.mu.Unlock()
}

func (wt *dsWatch) removeConn(c *esConn) {
	wt.mu.Lock()
	delete(wt.conns, c)
	wt.mu.Unlock()
}

// heartbeatWheel asks each registered connection for a heartbeat once per period, from one
// goroutine that runs while any is registered: connections are spread over slots, one slot
// per tick, instead of a ticker each.
type heartbeatWheel struct {
	period time.Duration
	mu     sync.Mutex
	slots  []map[*esConn]struct{}
	cur    int
	n      int
	ticks  bool // the goroutine runs
}

const wheelSlots = 16

func newHeartbeatWheel(period time.Duration) *heartbeatWheel {
	w := &heartbeatWheel{period: period, slots: make([]map[*esConn]struct{}, wheelSlots)}
	for i := range w.slots {
		w.slots[i] = map[*esConn]struct{}{}
	}
	return w
}

// add puts c in the slot visited last: its first heartbeat comes within one period.
func (w *heartbeatWheel) add(c *esConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c.slot = (w.cur + len(w.slots) - 1) % len(w.slots)
	w.slots[c.slot][c] = struct{}{}
	w.n++
	if !w.ticks {
		w.ticks = true
		go w.run()
	}
}

func (w *heartbeatWheel) remove(c *esConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.slots[c.slot][c]; ok {
		delete(w.slots[c.slot], c)
		w.n--
	}
}

func (w *heartbeatWheel) run() {
	t := time.NewTicker(max(w.period/time.Duration(len(w.slots)), time.Millisecond))
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		if w.n == 0 {
			w.ticks = false
			w.mu.Unlock()
			return
		}
		w.cur = (w.cur + 1) % len(w.slots)
		for c := range w.slots[w.cur] {
			c.heartbeat()
		}
		w.mu.Unlock()
	}
}

// wheel is the heartbeat wheel of h's hijacked EventSources, made on first use.
func (h *httpStreams) wheel() *heartbeatWheel {
	h.wheelOnce.Do(func() { h.hbWheel = newHeartbeatWheel(h.heartbeat) })
	return h.hbWheel
}

// sharedReads lets EventSources of one stream at one position share one read: 10,000 opened
// at once, or woken by one append, otherwise ask the stream's object one read each, all
// waiting in line with their stacks and buffers. A read serves only the readers that asked
// after it started (after < its id), so none misses an append it was told of.
type sharedReads struct {
	seq atomic.Uint64 // ids of reads started so far
	mu  sync.Mutex
	m   map[readKey]*sharedRead
}

type readKey struct {
	name string
	from uint64
}

type sharedRead struct {
	id   uint64
	done chan struct{}
	st   int
	rd   *streamapi.DSRead
	err  error
}

// read reads name from from, joining a read in flight that started after after.
func (sr *sharedReads) read(ctx context.Context, h *httpStreams, name string, from, after uint64) (int, *streamapi.DSRead, error) {
	k := readKey{name, from}
	sr.mu.Lock()
	f := sr.m[k]
	if f == nil || f.id <= after {
		f = &sharedRead{id: sr.seq.Add(1), done: make(chan struct{})}
		if sr.m == nil {
			sr.m = map[readKey]*sharedRead{}
		}
		sr.m[k] = f
		sr.mu.Unlock()
		// Not on the first asker's context: the others would fail with it.
		rctx, cancel := context.WithTimeout(h.g.ctx, h.g.opts.RequestTimeout)
		f.st, f.rd, _, f.err = h.readDS(rctx, name, from, false, true)
		cancel()
		sr.mu.Lock()
		if sr.m[k] == f {
			delete(sr.m, k)
		}
		sr.mu.Unlock()
		close(f.done)
	} else {
		sr.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.st, f.rd, f.err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}
