package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
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
	defaultStreamQueueBytes = 1 << 20
	defaultStreamWindow     = 256
	maxStreamWindow         = 1 << 16
	streamWriteTimeout      = 10 * time.Second
	streamAckInterval       = 100 * time.Millisecond
	maxStreamSubs           = 64
	maxPublishBatch         = 1024
	maxPublishBatchBytes    = 512 << 10
	// publishQueue is the reader's hand-off to the publisher: small, since it is held by
	// every connection that ever published (a batch still gathers up to maxPublishBatch
	// while the reader keeps filling it).
	publishQueue = 256
	// publishCost is what one publish adds to a batch beyond its data and id (framing).
	publishCost = 32
)

// streamConn is one client connection to /v1/stream: its subscriptions, its bounded
// outgoing queue with its own writer, its publishes and its durable acks.
//
// An idle connection costs one goroutine, the reader (readLoop). The writer, the publisher,
// the commander and each subscription's catch-up (streamSub.run) start when there is work
// and exit when it is done; durable acks are flushed by a timer armed by the first ack
// after a flush. 10,000 idle connections once held six goroutines and ~70 KB each.
type streamConn struct {
	g       *Gateway
	ws      *websocket.Conn
	bc      *batchConn // under ws: lets the writer send a batch in one write
	ctx     context.Context
	cancel  context.CancelFunc
	primary string
	client  string // durable client id, or ""
	window  int
	// redelivery is the redelivery timeout of a durable client's or group member's
	// unacknowledged messages (0: the default).
	redelivery time.Duration
	group      *streamGroup // a consumer group member's connection, or nil
	info       streams.Conn // what the server hooks see of the connection

	// deadlineSet is when the writer last moved the write deadline (the writer's only).
	deadlineSet time.Time

	qmu      sync.Mutex
	queue    [][]byte
	qbytes   int // queued and not yet written
	qmax     int
	ready    bool          // upgraded (start ran): a writer may start
	writing  bool          // a writer goroutine runs (or ended the connection)
	waiting  bool          // the writer lingers, parked on qwake
	ended    bool          // torn down: no writer starts any more
	closeMsg []byte        // set once: the connection is closing with it
	qwake    chan struct{} // wakes the lingering writer; made by the first linger

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

type pubReq struct {
	id       string
	data     json.RawMessage
	producer *streamapi.Producer // an idempotent producer's write (stream_publish.go)
	at       time.Time           // when it was read, for the publish→ack metric
}

type cmdReq struct {
	id, name string
	args     json.RawMessage
}

// enqueue queues one frame; past the byte bound the connection closes as a slow consumer.
func (c *streamConn) enqueue(f []byte) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closeMsg != nil {
		return
	}
	if c.qbytes+len(f) > c.qmax {
		c.closeMsg = websocket.FormatCloseMessage(CloseSlowConsumer, "slow consumer: outgoing queue full; resume from your last ack")
		c.g.streams.slowClosed.Add(1)
		c.g.metrics.SlowConsumers.WithLabelValues(wire.ConnStreamSocket).Inc()
	} else {
		c.queue = append(c.queue, f)
		c.qbytes += len(f)
	}
	c.kickWriter()
}

// kickWriter wakes the lingering writer, or starts one (under qmu).
func (c *streamConn) kickWriter() {
	if c.waiting {
		c.waiting = false
		select {
		case c.qwake <- struct{}{}:
		default:
		}
		return
	}
	c.startWriter()
}

// startWriter starts the writer unless it runs (under qmu). Every wg.Add happens under qmu
// before ended is set, hence before the reader's wg.Wait.
func (c *streamConn) startWriter() {
	if !c.ready || c.writing || c.ended {
		return
	}
	c.writing = true
	c.wg.Add(1)
	go c.writer()
}

// fail closes the connection with code.
func (c *streamConn) fail(code int, reason string) {
	c.qmu.Lock()
	if c.closeMsg == nil {
		c.closeMsg = websocket.FormatCloseMessage(code, reason)
	}
	c.kickWriter()
	c.qmu.Unlock()
}

// writer writes queued frames; it is the only writer. With the queue empty it lingers for
// one to two ticks of the hub's linger clock, then exits: in a busy fan-out a connection's
// frames come every few milliseconds, and a goroutine started per batch would cost more
// than the wait. It ends the connection when it writes a close frame or a write fails (and
// then stays marked as running, so that no other starts).
func (c *streamConn) writer() {
	defer c.wg.Done()
	quiet := 0 // linger ticks seen with nothing to write
	for {
		c.qmu.Lock()
		batch, closeMsg := c.queue, c.closeMsg
		c.queue = nil
		if len(batch) == 0 && closeMsg == nil {
			if quiet >= 2 || c.ended {
				c.writing = false
				c.qmu.Unlock()
				return
			}
			if c.qwake == nil {
				c.qwake = make(chan struct{}, 1)
			}
			c.waiting = true
			wake := c.qwake
			c.qmu.Unlock()
			select {
			case <-wake:
			case <-c.g.streams.lingerTick():
				quiet++
			}
			c.qmu.Lock()
			c.waiting = false
			c.qmu.Unlock()
			continue
		}
		quiet = 0
		c.qmu.Unlock()
		if closeMsg != nil {
			_ = c.ws.WriteControl(websocket.CloseMessage, closeMsg, time.Now().Add(time.Second))
			c.closeWS()
			return
		}
		if c.bc != nil {
			c.bc.hold() // the whole batch leaves in one write
		}
		// One lock per batch, not per frame, and a write deadline moved at most once a
		// second (a write may then get 9 to 10 s): per frame they cost a tenth of a
		// 1,000-subscriber fan-out, where most batches are one frame. With a batchConn the
		// writes below only fill its buffer; the deadline bounds release's one write.
		if now := time.Now(); now.Sub(c.deadlineSet) >= time.Second {
			_ = c.ws.SetWriteDeadline(now.Add(streamWriteTimeout))
			c.deadlineSet = now
		}
		n := 0
		for _, f := range batch {
			if err := c.ws.WriteMessage(websocket.TextMessage, f); err != nil {
				c.closeWS()
				return
			}
			n += len(f)
		}
		if c.bc != nil {
			if err := c.bc.release(); err != nil {
				c.closeWS()
				return
			}
		}
		c.qmu.Lock()
		c.qbytes -= n
		c.qmu.Unlock()
	}
}

// closeWS ends the connection (the reader then fails and tears it down).
func (c *streamConn) closeWS() {
	c.cancel()
	_ = c.ws.Close()
}

// start readies the connection once upgraded: frames queued before (a subscription's
// first replay) leave now, and the gateway's shutdown closes it with 1001 even while no
// goroutine but the reader runs.
func (c *streamConn) start() {
	c.qmu.Lock()
	c.ready = true
	if len(c.queue) > 0 || c.closeMsg != nil {
		c.startWriter()
	}
	c.qmu.Unlock()
	context.AfterFunc(c.ctx, func() { c.fail(websocket.CloseGoingAway, "closing") })
}

// finish tears the connection down once its reader ended: a close frame unless one was
// sent, no new goroutine, every goroutine waited for, durable acks flushed.
func (c *streamConn) finish() {
	c.cancel()
	c.closeSubs()
	c.fail(websocket.CloseGoingAway, "closing")
	c.qmu.Lock()
	c.ended = true
	c.qmu.Unlock()
	c.wg.Wait()
	c.flushMu.Lock()
	c.flushAcks(context.Background(), true)
	c.flushMu.Unlock()
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
	up, err := c.g.streams.acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	if latest {
		// The stream's own tail: the shared feed may not have seen the last appends yet.
		_, tail, err := c.g.streams.info(ctx, name)
		if err != nil {
			c.g.streams.release(up)
			return nil, err
		}
		from = tail + 1
	}
	s := &streamSub{conn: c, up: up, name: name, window: c.window, next: from}
	if c.client != "" {
		s.rd = newSubRedelivery(cmp.Or(c.redelivery, defaultRedelivery))
	}
	c.smu.Lock()
	if _, dup := c.subs[name]; dup || c.subsClosed {
		c.smu.Unlock()
		c.g.streams.release(up)
		if !dup {
			return nil, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: "the connection is closing"}
		}
		return nil, &streamapi.Error{Code: streamapi.CodeAlreadySubscribed, Message: "already subscribed to " + name}
	}
	c.subs[name] = s
	c.smu.Unlock()
	up.mu.Lock()
	if latest {
		s.next = max(s.next, up.last+1)
	}
	s.acked = s.next - 1
	up.subs[s] = struct{}{}
	s.rd.start(s)
	s.poke() // catch up, or join the live feed
	up.mu.Unlock()
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

func (s *streamSub) stop() {
	up := s.up
	up.mu.Lock()
	s.closed = true // a running catch-up sees it and exits
	delete(up.subs, s)
	up.mu.Unlock()
	s.rd.stop()
	up.hub.release(up)
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
	if c.pubs == nil {
		c.pubs = make(chan pubReq, publishQueue)
	}
	select {
	case c.pubs <- p:
	case <-c.ctx.Done():
		return false
	}
	if c.pubRun.CompareAndSwap(false, true) {
		c.wg.Add(1)
		go c.publisher()
	}
	return true
}

// queueCommand is queuePublish for commands.
func (c *streamConn) queueCommand(cmd cmdReq) bool {
	if c.cmds == nil {
		c.cmds = make(chan cmdReq, 64)
	}
	select {
	case c.cmds <- cmd:
	case <-c.ctx.Done():
		return false
	}
	if c.cmdRun.CompareAndSwap(false, true) {
		c.wg.Add(1)
		go c.commander()
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
		limit := c.g.objectBatchBytes(maxPublishBatchBytes)
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
			if refused[i] = c.g.authorizePublish(ctx, c.info, c.primary, p.data); refused[i] == nil {
				n++
			}
		}
		var out []streamapi.Published
		var err error
		if n > 0 {
			out, err = c.g.sc.Publish(ctx, c.primary, publishItems(batch, refused, n))
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
