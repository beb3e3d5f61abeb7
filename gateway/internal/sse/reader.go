package sse

// One loop for every event stream of a stream — a browser's EventSource, sse-cluster's
// channels, a Durable Streams live=sse response: a Reader follows the stream on its
// feed (the WebSocket subscribers' consumer and ring), and a writer goroutine, started when
// the feed has news and gone once caught up, renders the records from the reader's
// position into events. They go through a client connection of the gateway's core
// (gateway/internal/conns): over HTTP/1.1 the connection is taken from net/http once its
// headers are decided, which frees net/http's connection, request, response, their buffers
// (~10 KB) and the handler's deep stack, and what stays is one goroutine reading the socket
// to see the client leave; over HTTP/2 the handler writes the queue. Heartbeats come from
// the core's one wheel. 10,000 idle EventSources held ~50 KB each before.

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/gateway/internal/feed"
)

// A Renderer turns the records of a stream into the events of one event stream, and keeps
// its position; only the Reader's (single) writer goroutine calls it.
type Renderer interface {
	// From is the offset the next read starts at.
	From() uint64
	// Render renders the records of rd, read at From, into buf and moves the position on.
	// more: there is more to read now; end: the stream is over (the connection closes
	// once buf is out).
	Render(buf *bytes.Buffer, rd *streamapi.DSRead) (more, end bool)
}

// Reader is one event stream of a stream: a listener of its feed.
type Reader struct {
	h      *Server
	fd     *dsread.Follow
	conn   *conns.Conn
	render Renderer
	ctx    context.Context
	cancel context.CancelFunc
	done   func()            // the caller's end of the stream, or nil
	first  *streamapi.DSRead // the object's first read, rendered before the feed's (First)

	mu      sync.Mutex
	running bool // a writer goroutine runs
	again   bool // the stream changed (or the first read is due)
	closed  bool
}

var _ feed.Listener = (*Reader)(nil)

// sseQueued bounds what a reader leaves queued on its connection before it waits for the
// queue to drain (a reader far behind reads a page after another).
const sseQueued = 2 * dsread.FollowBytes

// NewReader is an event stream of a connection of kind on fd's stream, rendered by
// render from its position on; it releases fd's feed when it ends.
func (h *Server) NewReader(kind conns.Kind, fd *dsread.Follow, render Renderer) *Reader {
	sr := &Reader{h: h, fd: fd, conn: h.conns.NewConn(kind), render: render, again: true}
	sr.ctx, sr.cancel = context.WithCancel(h.ctx)
	sr.conn.SetOnDrain(sr.kick)
	sr.conn.OnEnd(sr.close)
	return sr
}

// First gives the reader the object's first read (from the position on), rendered before
// what it reads from the feed.
func (sr *Reader) First(rd *streamapi.DSRead) { sr.first = rd }

// EndAfter ends the stream after d: the client reconnects from its last position.
func (sr *Reader) EndAfter(d time.Duration) {
	end := time.AfterFunc(d, func() { sr.conn.Close(0, "") })
	sr.conn.OnEnd(func() { end.Stop() })
}

// Serve serves r as the event stream, with the headers set on w: over HTTP/1.1 off
// net/http (the handler returns at once), else in the handler until the stream ends.
// prefix is sent first.
func (sr *Reader) Serve(w http.ResponseWriter, r *http.Request, prefix []byte) {
	if len(prefix) > 0 {
		sr.conn.Send(prefix)
	}
	context.AfterFunc(sr.ctx, func() { sr.conn.Close(0, "") }) // the gateway's shutdown ends it
	sr.fd.Feed.Listen(sr)
	if sr.h.conns.AcceptSSE(w, r, sr.conn) {
		sr.kick()
		return
	}
	w.WriteHeader(http.StatusOK)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	sr.kick()
	sr.conn.ServeResponse(r.Context(), w)
}

// Appended is the feed's news of a message.
func (sr *Reader) Appended(*feed.Msg) { sr.kick() }

// kick starts the writer unless it runs, and makes it read again.
func (sr *Reader) kick() {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.again = true
	if sr.running || sr.closed {
		return
	}
	sr.running = true
	go sr.write()
}

// write sends what is due, then exits.
func (sr *Reader) write() {
	var buf bytes.Buffer
	for {
		sr.mu.Lock()
		again := sr.again
		sr.again = false
		if sr.closed || !again {
			sr.running = false
			sr.mu.Unlock()
			return
		}
		sr.mu.Unlock()
		for {
			if sr.conn.Queued() > sseQueued {
				sr.conn.WantDrain() // its kick reads on
				break
			}
			rd := sr.first
			sr.first = nil
			if rd == nil {
				var err error
				if rd, err = sr.h.reads.ReadFollowing(sr.ctx, sr.fd, sr.render.From()); err != nil || rd == nil {
					sr.conn.Close(0, "")
					return
				}
			}
			buf.Reset()
			more, end := sr.render.Render(&buf, rd)
			if buf.Len() > 0 && !sr.conn.Send(buf.Bytes()) {
				return // closed (a slow consumer's connection is, at once)
			}
			if end {
				sr.conn.Close(0, "")
				return
			}
			if !more {
				break
			}
		}
	}
}

// close is the connection's end: the reader lets the feed go.
func (sr *Reader) close() {
	sr.mu.Lock()
	if sr.closed {
		sr.mu.Unlock()
		return
	}
	sr.closed = true
	sr.mu.Unlock()
	sr.cancel()
	sr.fd.Feed.Unlisten(sr)
	sr.fd.Feed.Release()
	if sr.done != nil {
		sr.done()
	}
}

// esRender renders EventSource events, one per message, with event; a record's events,
// when the reader sends all of them, are codec's encoding of its log message: rendered
// once per gateway, whoever reads them.
type esRender struct {
	fd    *dsread.Follow
	from  uint64
	seen  int // messages of the record at from already sent (-1: none)
	event esEvent
	codec *feed.Codec
}

var _ Renderer = (*esRender)(nil)

func (e *esRender) From() uint64 { return e.from }

func (e *esRender) Render(buf *bytes.Buffer, rd *streamapi.DSRead) (more, end bool) {
	shared := e.fd.Src != nil && len(e.fd.Src) == len(rd.Msgs) && rd.Meta.Fork == nil // ids are seqs
	for j, m := range rd.Msgs {
		if shared && (m.Seq != e.from || e.seen < 0) {
			buf.Write(e.fd.Src[j].Encoded(e.codec))
			e.seen = -1
			continue
		}
		msgs := dsread.JSONMessages(m)
		for i, msg := range msgs {
			if m.Seq == e.from && i <= e.seen {
				continue
			}
			e.event(buf, eventID(m.Seq, i, len(msgs)), msg)
		}
		e.seen = -1
	}
	if rd.Upto > e.from {
		e.from, e.seen = rd.Upto, -1
	}
	return e.from < rd.Next, false
}

// sharedReads lets EventSources opening one stream share reads of its object (whether it
// exists, its configuration, its tail): 10,000 opened at once otherwise ask the object one
// read each, all waiting in line with their stacks and buffers. As appends share requests
// (dshttp's batches), the EventSources that open while one read is in flight wait together
// for the next one, which starts when it ends: each opener is answered by a read that
// started after it asked, and a stream has at most one read in flight.
type sharedReads struct {
	mu sync.Mutex
	m  map[string]*readQueue
}

// readQueue is one stream's read in flight and the one that waits for it.
type readQueue struct {
	inflight bool
	next     *sharedRead
}

type sharedRead struct {
	done chan struct{}
	st   int
	rd   *streamapi.DSRead
	err  error
}

// read reads name's configuration and tail (an implicit read: a stream used only over
// WebSocket reads as JSON), sharing the read with the others that ask meanwhile.
func (sr *sharedReads) read(ctx context.Context, h *Server, name string) (int, *streamapi.DSRead, error) {
	sr.mu.Lock()
	if sr.m == nil {
		sr.m = map[string]*readQueue{}
	}
	q := sr.m[name]
	if q == nil {
		q = &readQueue{}
		sr.m[name] = q
	}
	f := q.next
	if f == nil {
		f = &sharedRead{done: make(chan struct{})}
		q.next = f
	}
	if !q.inflight {
		q.inflight, q.next = true, nil
		go sr.run(h, name, q, f)
	}
	sr.mu.Unlock()
	select {
	case <-f.done:
		return f.st, f.rd, f.err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

// run makes the reads of q one after another while readers wait for a next one.
func (sr *sharedReads) run(h *Server, name string, q *readQueue, f *sharedRead) {
	for f != nil {
		// Not on an asker's context: the others would fail with it.
		rctx, cancel := context.WithTimeout(h.ctx, h.opts.RequestTimeout)
		f.st, f.rd, _, f.err = h.reads.Read(rctx, name, streamapi.DSReadQuery{From: 1 << 62, Implicit: true})
		cancel()
		close(f.done)
		sr.mu.Lock()
		f, q.next = q.next, nil
		if f == nil {
			q.inflight = false
			delete(sr.m, name)
		}
		sr.mu.Unlock()
	}
}
