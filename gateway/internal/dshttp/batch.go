package dshttp

// Group commit of protocol appends, one level above the object (builtin/stream,
// dsbatch.go): the appends to one stream that arrive while the gateway's previous request
// for that stream is in flight wait together and go as the next request, one object event
// and one pipelined log batch for all of them. There is no timer: a lone append leaves at
// once, so batching costs latency only when the stream is already busy, and a batch grows
// with the load. Only when the appends waiting already fill a batch (large appends) does
// another request start while one is in flight.

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/wire"
)

const (
	// maxAppendBatch bounds the appends of one batch (the object takes up to
	// streamapi.MaxBatch).
	maxAppendBatch = streamapi.MaxBatch
	// maxAppendBatchBytes bounds a batch's data (plus appendCost per append) so that its
	// event stays well inside the object's event limit; one larger append goes alone.
	maxAppendBatchBytes = 512 << 10
	// appendCost is what one append adds to an event beyond its data (the runtime counts
	// 64 bytes a log record).
	appendCost = 128
	// maxAppendsInFlight bounds a stream's requests in flight. A second one starts only when
	// the appends waiting fill a batch already: waiting longer would not grow it (large
	// appends), so their transfer may as well overlap the commit of the one before.
	maxAppendsInFlight = 4
)

// batchBytes is the bound of one appends batch on this NATS connection.
func (h *Server) batchBytes() int { return h.streams.BatchBytes(maxAppendBatchBytes) }

// appendReply is what one queued append gets back: its answer, or for the whole batch the
// object's error answer (fail) or a failure to reach it (err).
type appendReply struct {
	ans  streamapi.DSAnswer
	fail *streamapi.Error
	err  error
}

type queuedAppend struct {
	a    streamapi.DSAppend
	done chan appendReply // buffered: the sender never waits for a caller that left
}

// appendQueue is one stream's appends waiting for a request in flight.
type appendQueue struct {
	inflight int // requests in flight
	pending  []*queuedAppend
	bytes    int // of pending, as take counts them
}

// appendBatcher holds the queues of the streams with appends in flight.
type appendBatcher struct {
	mu     sync.Mutex
	queues map[string]*appendQueue
}

// take removes the next batch from q's front: at least one append, then as many as fit
// in limit bytes.
func (q *appendQueue) take(limit int) []*queuedAppend {
	n, size := 0, 0
	for n < len(q.pending) && n < maxAppendBatch {
		d := len(q.pending[n].a.Data) + appendCost
		if n > 0 && size+d > limit {
			break
		}
		size += d
		n++
	}
	q.bytes -= size
	b := q.pending[:n:n]
	q.pending = q.pending[n:]
	if len(q.pending) == 0 {
		q.pending = nil // let the backing array go
	}
	return b
}

// appendDS appends a through the stream's queue and waits for its answer.
func (h *Server) appendDS(ctx context.Context, name string, a streamapi.DSAppend) appendReply {
	qa := &queuedAppend{a: a, done: make(chan appendReply, 1)}
	ab := &h.appends
	ab.mu.Lock()
	q := ab.queues[name]
	if q == nil {
		q = &appendQueue{}
		ab.queues[name] = q
	}
	q.pending = append(q.pending, qa)
	q.bytes += len(a.Data) + appendCost
	if limit := h.batchBytes(); q.inflight == 0 || q.inflight < maxAppendsInFlight && q.bytes >= limit {
		q.inflight++
		batch := q.take(limit)
		ab.mu.Unlock()
		go h.sendAppends(name, q, batch)
	} else {
		ab.mu.Unlock()
	}
	select {
	case r := <-qa.done:
		return r
	case <-ctx.Done():
		// The append may still be stored (as when a client leaves mid-request).
		return appendReply{err: ctx.Err()}
	}
}

// sendAppends sends batch, answers its callers, and goes on with what queued meanwhile
// until the queue is empty.
func (h *Server) sendAppends(name string, q *appendQueue, batch []*queuedAppend) {
	h.metrics.MessagesIn.WithLabelValues(wire.ConnHTTP).Add(float64(len(batch)))
	ab := &h.appends
	for {
		h.sendBatch(name, batch)
		ab.mu.Lock()
		if len(q.pending) == 0 {
			if q.inflight--; q.inflight == 0 {
				delete(ab.queues, name)
			}
			ab.mu.Unlock()
			return
		}
		batch = q.take(h.batchBytes())
		ab.mu.Unlock()
	}
}

func (h *Server) sendBatch(name string, batch []*queuedAppend) {
	fail := func(r appendReply) {
		for _, qa := range batch {
			qa.done <- r
		}
	}
	as := make([]streamapi.DSAppend, len(batch))
	for i, qa := range batch {
		as[i] = qa.a
	}
	// Not any one caller's context: the others' appends must not fail when it leaves.
	answers, err := h.sc.AppendBatch(h.ctx, name, as)
	var se *streamapi.Error
	switch {
	case err == nil:
	case errors.As(err, &se) && se.Status == http.StatusNotFound && se.Code == streamapi.CodeNotFound:
		h.sendOneByOne(name, batch) // an object host from before batches (a rolling upgrade)
		return
	case errors.As(err, &se) && se.Status != 0:
		fail(appendReply{fail: se}) // the object's answer to the whole batch
		return
	default:
		fail(appendReply{err: err})
		return
	}
	for i, qa := range batch {
		qa.done <- appendReply{ans: answers[i]}
	}
}

// sendOneByOne sends each append of batch as its own POST /ds, the request before batches.
func (h *Server) sendOneByOne(name string, batch []*queuedAppend) {
	for _, qa := range batch {
		ans, err := h.sc.Append(h.ctx, name, qa.a)
		qa.done <- appendReply{ans: ans, err: err} // an error answer has its Code set
	}
}
