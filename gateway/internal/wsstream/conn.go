package wsstream

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/streams"
)

// Close codes of stream connections (besides CloseSlowConsumer, 4008: the client's
// outgoing queue overflowed; it resumes from its last ack).
const (
	// CloseStreamUnavailable: the stream could not be read or written; reconnect.
	CloseStreamUnavailable = 1013
)

// Stream connection defaults.
const (
	defaultStreamWindow  = 256
	maxStreamWindow      = 1 << 16
	streamAckInterval    = 100 * time.Millisecond
	maxStreamSubs        = 64
	maxPublishBatch      = 1024
	maxPublishBatchBytes = 512 << 10
	// publishQueue is the reader's hand-off to the publisher: small, since it is held by
	// every connection that ever published (a batch still gathers up to maxPublishBatch
	// while the reader keeps filling it).
	publishQueue = 256
	// publishCost is what one publish adds to a batch beyond its data and id (framing).
	publishCost = 32
)

// streamConn is one client connection to /v1/stream: its subscriptions, its publishes and
// its durable acks, over a client connection of the gateway's core (conn: its byte-bounded
// outgoing queue, written by the core's flusher).
//
// An idle connection costs melody's read and ping goroutines. The publisher, the commander
// and a subscription reading the log (streamSub.fetch) start when there is work and exit
// when it is done; durable acks are flushed by a timer armed by the first ack after a
// flush. 10,000 idle connections once held six goroutines and ~70 KB each.
type streamConn struct {
	g       *Server
	conn    *conns.Conn
	limit   int64 // the largest frame taken (a larger one, up to 16 times it, is refused)
	ctx     context.Context
	cancel  context.CancelFunc
	primary string
	client  string // durable client id, or ""
	window  int
	// redelivery is the redelivery timeout of a durable client's or group member's
	// unacknowledged messages (0: the default).
	redelivery time.Duration
	group      *streamGroup // a consumer group member's connection, or nil
	compat     *compatConn  // a durable-stream connection, or nil
	info       streams.Conn // what the server hooks see of the connection

	smu        sync.Mutex
	subs       map[string]*streamSub
	subsClosed bool // closeSubs ran: no subscription is added any more

	amu      sync.Mutex
	acks     map[string]uint64 // durable acks not yet sent to their streams
	ackTimer bool              // a flush is scheduled
	flushMu  sync.Mutex        // one flush at a time, so acks reach a stream in order

	// Made by the reader on first use; their goroutines run while they hold work.
	pubs   chan pubReq
	cmds   chan cmdReq
	pubRun atomic.Bool
	cmdRun atomic.Bool
	wg     sync.WaitGroup
}

var _ conns.Session = (*streamConn)(nil)

type pubReq struct {
	id       string
	data     json.RawMessage
	producer *streamapi.Producer // an idempotent producer's write (publish.go)
	at       time.Time           // when it was read, for the publish→ack metric
}

type cmdReq struct {
	id, name string
	args     json.RawMessage
}

// newStreamConn is a stream connection from request r, not upgraded yet: what it is sent
// waits in its queue until it is.
func (g *Server) newStreamConn(r *http.Request, primary string) *streamConn {
	c := &streamConn{g: g, conn: g.conns.NewConn(conns.StreamSocket), primary: primary, limit: g.opts.MaxMessage,
		subs: map[string]*streamSub{}, info: g.hooks.ConnInfo(r)}
	c.ctx, c.cancel = context.WithCancel(g.ctx)
	c.conn.SetOnDrain(c.drained)
	return c
}

// enqueue queues one frame; past the queue's byte bound the connection closes as a slow
// consumer (the core's policy).
func (c *streamConn) enqueue(f []byte) { c.conn.Send(f) }

// Fail closes the connection with code, after what is queued.
func (c *streamConn) Fail(code int, reason string) { c.conn.Close(code, reason) }

// Connected is melody's: the upgrade is done. What was queued before (a subscription's
// first replay) leaves now, and the gateway's shutdown closes the connection with 1001.
func (c *streamConn) Connected() {
	c.conn.Ready()
	context.AfterFunc(c.ctx, func() { c.Fail(websocket.CloseGoingAway, "closing") })
	switch {
	case c.group != nil:
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.group.run() }()
	case c.compat != nil:
		c.compat.start()
	}
}

// Message is one client frame, on the session's read loop. A bad frame is answered with
// an error frame; the connection stays usable.
func (c *streamConn) Message(data []byte, binary bool) {
	c.g.metrics.MessagesIn.WithLabelValues(wire.ConnStreamSocket).Inc()
	if c.compat != nil {
		c.compat.message(data, binary)
		return
	}
	if int64(len(data)) > c.limit {
		c.sendError("", streamapi.CodeTooLarge, fmt.Sprintf("frame over %d bytes", c.limit))
		return
	}
	if binary {
		c.sendError("", streamapi.CodeBadFrame, "binary frames are not supported: send JSON text frames")
		return
	}
	c.frame(data)
}

func (c *streamConn) Closing(int, string) {}

// Disconnected is melody's: the session is over. It tears the connection down: no new
// goroutine, every goroutine waited for, durable acks flushed.
func (c *streamConn) Disconnected() {
	c.cancel()
	c.closeSubs()
	c.wg.Wait()
	c.flushMu.Lock()
	c.flushAcks(context.Background(), true)
	c.flushMu.Unlock()
	c.letFeedGo()
}

// letFeedGo ends a group member's or durable-stream connection's hold on its feed.
func (c *streamConn) letFeedGo() {
	switch {
	case c.group != nil:
		c.group.end()
	case c.compat != nil:
		c.compat.end()
	}
}

// drained is the core's: the queue was written out, so subscribers that stopped for room
// read on.
func (c *streamConn) drained() {
	c.smu.Lock()
	subs := slices.Collect(maps.Values(c.subs))
	c.smu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.pump()
		s.mu.Unlock()
	}
}

// send queues a control frame (reply, error, published).
func (c *streamConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.enqueue(b)
}

// sendError queues an error frame; id is left out when empty.
func (c *streamConn) sendError(id, code, msg string) {
	f := map[string]any{"type": "error", "code": code, "message": msg}
	if id != "" {
		f["id"] = id
	}
	c.send(f)
}

// gap tells the client that messages [from, first) are gone (retention or a delete).
func (c *streamConn) gap(stream string, from, first uint64) {
	c.send(map[string]any{"type": "error", "code": streamapi.CodeHistoryGone, "stream": stream, "seq": from, "firstSeq": first,
		"message": fmt.Sprintf("messages %d to %d are no longer retained; continuing from %d", from, first-1, first)})
}

// subscribe starts a subscription from seq from (0: after the durable client's last ack,
// else 1; latest: only new messages).
func (c *streamConn) subscribe(ctx context.Context, name string, from uint64, latest bool) (*streamSub, error) {
	c.smu.Lock()
	_, dup := c.subs[name]
	n := len(c.subs)
	c.smu.Unlock()
	if dup {
		return nil, &streamapi.Error{Code: streamapi.CodeAlreadySubscribed, Message: "already subscribed to " + name}
	}
	if n >= maxStreamSubs {
		return nil, &streamapi.Error{Code: streamapi.CodeTooManySubs, Message: fmt.Sprintf("at most %d streams per connection", maxStreamSubs)}
	}
	if from == 0 && !latest {
		from = 1
		if c.client != "" {
			a, err := c.g.sc.ClientAck(ctx, name, c.client)
			if err != nil {
				return nil, err
			}
			from = a.Seq + 1
		}
	}
	f, err := c.g.streams.Acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	if latest {
		// The stream's own tail: the shared feed may not have seen the last appends yet.
		_, tail, err := c.g.streams.Info(ctx, name)
		if err != nil {
			f.Release()
			return nil, err
		}
		from = max(tail, f.Last()) + 1
	} else if err := c.checkRetained(ctx, f, name, from); err != nil {
		f.Release()
		return nil, err
	}
	s := &streamSub{conn: c, feed: f, name: name, window: c.window, next: from, acked: from - 1}
	if c.client != "" {
		s.rd = newSubRedelivery(cmp.Or(c.redelivery, defaultRedelivery))
	}
	c.smu.Lock()
	if _, dup := c.subs[name]; dup || c.subsClosed {
		c.smu.Unlock()
		f.Release()
		if !dup {
			return nil, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: "the connection is closing"}
		}
		return nil, &streamapi.Error{Code: streamapi.CodeAlreadySubscribed, Message: "already subscribed to " + name}
	}
	c.subs[name] = s
	c.smu.Unlock()
	s.start() // catch up, or join the live feed
	return s, nil
}

// unsubscribe ends the subscription to name.
func (c *streamConn) unsubscribe(name string) bool {
	c.smu.Lock()
	s := c.subs[name]
	delete(c.subs, name)
	c.smu.Unlock()
	if s == nil {
		return false
	}
	s.stop()
	return true
}

func (c *streamConn) sub(name string) *streamSub {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.subs[name]
}

// ack applies a client's cumulative ack and, for a durable client, schedules it.
func (c *streamConn) ack(name string, seq uint64) string {
	s := c.sub(name)
	if s == nil {
		return "not subscribed to " + name
	}
	if msg := s.ack(seq); msg != "" {
		return msg
	}
	if c.client != "" {
		c.amu.Lock()
		if c.acks == nil {
			c.acks = map[string]uint64{}
		}
		c.acks[name] = max(c.acks[name], seq)
		if !c.ackTimer {
			// Acks are sent to their streams at most every streamAckInterval.
			c.ackTimer = true
			time.AfterFunc(streamAckInterval, c.timedFlush)
		}
		c.amu.Unlock()
	}
	return ""
}

// timedFlush sends the acks gathered since the timer was armed.
func (c *streamConn) timedFlush() {
	c.amu.Lock()
	c.ackTimer = false
	c.amu.Unlock()
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.flushAcks(c.ctx, false)
}

// flushAcks sends the durable acks gathered (under flushMu). Unless final, an ack that
// failed is kept for the next flush (finish's final flush at the latest).
func (c *streamConn) flushAcks(ctx context.Context, final bool) {
	c.amu.Lock()
	acks := c.acks
	c.acks = nil
	c.amu.Unlock()
	for name, seq := range acks {
		cctx, cancel := context.WithTimeout(ctx, c.g.opts.RequestTimeout)
		err := c.g.sc.Ack(cctx, name, streamapi.Ack{Client: c.client, Seq: seq})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.g.log.Warn("stream ack not stored", "stream", name, "client", c.client, "err", err)
			}
			if !final {
				c.amu.Lock()
				if c.acks == nil {
					c.acks = map[string]uint64{}
				}
				c.acks[name] = max(c.acks[name], seq)
				c.amu.Unlock()
			}
		}
	}
}

// queuePublish hands a publish to the publisher, starting it when it is not running (on
// the reader's goroutine only). False: the connection ended.
func (c *streamConn) queuePublish(p pubReq) bool {
	return handOff(c, &c.pubs, publishQueue, &c.pubRun, c.publisher, p)
}

// queueCommand is queuePublish for commands.
func (c *streamConn) queueCommand(cmd cmdReq) bool {
	return handOff(c, &c.cmds, 64, &c.cmdRun, c.commander, cmd)
}

// handOff queues v for a worker that runs while its queue holds work: the queue *q is made
// (of size) on first use, and worker is started unless run says it runs. False: the
// connection ended first.
func handOff[T any](c *streamConn, q *chan T, size int, run *atomic.Bool, worker func(), v T) bool {
	if *q == nil {
		*q = make(chan T, size)
	}
	select {
	case *q <- v:
	case <-c.ctx.Done():
		return false
	}
	if run.CompareAndSwap(false, true) {
		c.wg.Add(1)
		go worker()
	}
	return true
}

// idle reports whether a goroutine that found its queue empty may exit: it clears run,
// then looks again, since the reader may have queued in between and seen run still set.
func idle[T any](run *atomic.Bool, q chan T) bool {
	run.Store(false)
	return len(q) == 0 || !run.CompareAndSwap(false, true)
}

// publisher sends publishes to the primary stream in batches, in order, and answers each
// once the object replied (once the message is durable). It exits when none is queued.
func (c *streamConn) publisher() {
	defer c.wg.Done()
	for {
		var batch []pubReq
		select {
		case p := <-c.pubs:
			batch = append(batch, p)
		default:
			if idle(&c.pubRun, c.pubs) {
				return
			}
			continue
		}
		if c.ctx.Err() != nil {
			return
		}
		size := len(batch[0].data)
		limit := c.g.streams.BatchBytes(maxPublishBatchBytes)
		cost := len(batch[0].id) + publishCost
	more:
		for len(batch) < maxPublishBatch && size+cost < limit {
			select {
			case p := <-c.pubs:
				batch = append(batch, p)
				size += len(p.data)
				cost += len(p.id) + publishCost
			default:
				break more
			}
		}
		// The AuthorizePublish hook: a refused publish is answered in its place, in order.
		ctx, cancel := context.WithTimeout(c.ctx, c.g.opts.RequestTimeout)
		refused := make([]error, len(batch))
		n := 0
		for i, p := range batch {
			if refused[i] = c.g.hooks.AuthorizePublish(ctx, c.info, c.primary, p.data); refused[i] == nil {
				n++
			}
		}
		var out []streamapi.Published
		var err error
		if n > 0 {
			out, err = c.publish(ctx, publishItems(batch, refused, n))
		}
		cancel()
		if err != nil {
			code, msg := streamapi.CodePublishFailed, err.Error()
			if se, ok := err.(*streamapi.Error); ok {
				if se.Code != streamapi.CodeUnavailable && se.Code != streamapi.CodeInternal {
					code = se.Code
				}
				msg = se.Message
			}
			for i, p := range batch {
				if refused[i] != nil {
					c.sendError(p.id, streamapi.CodeForbidden, refused[i].(*streamapi.Error).Message)
				} else {
					c.sendError(p.id, code, "not published (or not known to be): "+msg)
				}
			}
			continue
		}
		j := 0
		for i, p := range batch {
			if refused[i] != nil {
				c.sendError(p.id, streamapi.CodeForbidden, refused[i].(*streamapi.Error).Message)
				continue
			}
			if out[j].Code != "" {
				c.send(publishError(p.id, out[j]))
			} else {
				c.enqueue(publishedFrame(p.id, out[j].Seq, out[j].Duplicate))
				c.g.metrics.PublishAck.Observe(time.Since(p.at).Seconds())
			}
			j++
		}
	}
}

// commander runs commands one at a time, in order; it exits when none is queued.
func (c *streamConn) commander() {
	defer c.wg.Done()
	for {
		if c.ctx.Err() != nil {
			return
		}
		select {
		default:
			if idle(&c.cmdRun, c.cmds) {
				return
			}
		case cmd := <-c.cmds:
			res, err := c.command(cmd)
			if err != nil {
				code, msg := streamapi.CodeCommandFailed, err.Error()
				if se, ok := err.(*streamapi.Error); ok {
					code, msg = se.Code, se.Message
				}
				c.sendError(cmd.id, code, msg)
				continue
			}
			c.send(map[string]any{"type": "reply", "id": cmd.id, "result": res})
		}
	}
}
