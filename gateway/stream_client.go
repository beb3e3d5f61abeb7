package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
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
)

// streamConn is one client connection to /v1/stream: its subscriptions, its bounded
// outgoing queue with its own writer, its publishes and its durable acks.
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
	qwake    chan struct{}
	closeMsg []byte // set once: the connection is closing with it

	smu  sync.Mutex
	subs map[string]*streamSub

	amu  sync.Mutex
	acks map[string]uint64 // durable acks not yet sent to their streams

	pubs chan pubReq
	cmds chan cmdReq
	wg   sync.WaitGroup
}

type pubReq struct {
	id   string
	data json.RawMessage
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
	} else {
		c.queue = append(c.queue, f)
		c.qbytes += len(f)
	}
	select {
	case c.qwake <- struct{}{}:
	default:
	}
}

// fail closes the connection with code.
func (c *streamConn) fail(code int, reason string) {
	c.qmu.Lock()
	if c.closeMsg == nil {
		c.closeMsg = websocket.FormatCloseMessage(code, reason)
	}
	c.qmu.Unlock()
	select {
	case c.qwake <- struct{}{}:
	default:
	}
}

// writer writes queued frames until the connection closes; it is the only writer.
func (c *streamConn) writer() {
	defer c.wg.Done()
	defer c.cancel()
	defer c.ws.Close()
	for {
		c.qmu.Lock()
		batch, closeMsg := c.queue, c.closeMsg
		c.queue = nil
		c.qmu.Unlock()
		if closeMsg != nil {
			_ = c.ws.WriteControl(websocket.CloseMessage, closeMsg, time.Now().Add(time.Second))
			return
		}
		if len(batch) == 0 {
			select {
			case <-c.qwake:
				continue
			case <-c.ctx.Done():
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "closing"), time.Now().Add(time.Second))
				return
			}
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
				return
			}
			n += len(f)
		}
		if c.bc != nil {
			if err := c.bc.release(); err != nil {
				return
			}
		}
		c.qmu.Lock()
		c.qbytes -= n
		c.qmu.Unlock()
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
	c.send(map[string]any{"type": "error", "code": "history_gone", "stream": stream, "seq": from, "firstSeq": first,
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
		return nil, &streamError{"already_subscribed", "already subscribed to " + name}
	}
	if n >= maxStreamSubs {
		return nil, &streamError{"too_many_subscriptions", fmt.Sprintf("at most %d streams per connection", maxStreamSubs)}
	}
	if from == 0 && !latest {
		from = 1
		if c.client != "" {
			var a struct{ Seq uint64 }
			if _, err := c.g.streamCall(ctx, name, "GET", "/client?id="+c.client, nil, &a); err != nil {
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
	s := &streamSub{conn: c, up: up, name: name, window: c.window, wake: make(chan struct{}, 1), next: from}
	if c.client != "" {
		s.rd = newSubRedelivery(cmp.Or(c.redelivery, defaultRedelivery))
	}
	c.smu.Lock()
	if _, dup := c.subs[name]; dup {
		c.smu.Unlock()
		c.g.streams.release(up)
		return nil, &streamError{"already_subscribed", "already subscribed to " + name}
	}
	c.subs[name] = s
	c.smu.Unlock()
	up.mu.Lock()
	if latest {
		s.next = max(s.next, up.last+1)
	}
	s.acked = s.next - 1
	up.subs[s] = struct{}{}
	up.mu.Unlock()
	c.wg.Add(1)
	go func() { defer c.wg.Done(); s.run() }()
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
	s.closed = true
	delete(up.subs, s)
	up.mu.Unlock()
	s.poke()
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
		c.acks[name] = max(c.acks[name], seq)
		c.amu.Unlock()
	}
	return ""
}

// ackLoop sends durable acks to their streams at most every streamAckInterval.
func (c *streamConn) ackLoop() {
	defer c.wg.Done()
	t := time.NewTicker(streamAckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			c.flushAcks(context.Background())
			return
		case <-t.C:
			c.flushAcks(c.ctx)
		}
	}
}

func (c *streamConn) flushAcks(ctx context.Context) {
	c.amu.Lock()
	acks := c.acks
	c.acks = map[string]uint64{}
	c.amu.Unlock()
	for name, seq := range acks {
		body, _ := json.Marshal([]map[string]any{{"client": c.client, "seq": seq}})
		cctx, cancel := context.WithTimeout(ctx, c.g.opts.RequestTimeout)
		_, err := c.g.streamCall(cctx, name, "POST", "/ack", body, nil)
		cancel()
		if err != nil {
			c.g.log.Warn("stream ack not stored", "stream", name, "client", c.client, "err", err)
			if ctx.Err() == nil {
				c.amu.Lock()
				c.acks[name] = max(c.acks[name], seq)
				c.amu.Unlock()
			}
		}
	}
}

// publisher sends publishes to the primary stream in batches, in order, and answers each
// once the object replied (once the message is durable).
func (c *streamConn) publisher() {
	defer c.wg.Done()
	for {
		var batch []pubReq
		select {
		case <-c.ctx.Done():
			return
		case p := <-c.pubs:
			batch = append(batch, p)
		}
		size := len(batch[0].data)
	more:
		for len(batch) < maxPublishBatch && size < maxPublishBatchBytes {
			select {
			case p := <-c.pubs:
				batch = append(batch, p)
				size += len(p.data)
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
		var out []struct {
			Seq uint64 `json:"seq"`
		}
		var err error
		if n > 0 {
			_, err = c.g.streamCall(ctx, c.primary, "POST", "/publish", publishBody(batch, refused, size), &out)
		}
		cancel()
		if err == nil && len(out) != n {
			err = &streamError{"internal", "stream object answered a different number of messages"}
		}
		if err != nil {
			code, msg := "publish_failed", err.Error()
			if se, ok := err.(*streamError); ok {
				if se.code != "unavailable" && se.code != "internal" {
					code = se.code
				}
				msg = se.message
			}
			for i, p := range batch {
				if refused[i] != nil {
					c.sendError(p.id, "forbidden", refused[i].(*streamError).message)
				} else {
					c.sendError(p.id, code, "not published (or not known to be): "+msg)
				}
			}
			continue
		}
		j := 0
		for i, p := range batch {
			if refused[i] != nil {
				c.sendError(p.id, "forbidden", refused[i].(*streamError).message)
				continue
			}
			c.enqueue(publishedFrame(p.id, out[j].Seq))
			j++
		}
	}
}

// commander runs commands one at a time, in order.
func (c *streamConn) commander() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case cmd := <-c.cmds:
			res, err := c.command(cmd)
			if err != nil {
				code, msg := "command_failed", err.Error()
				if se, ok := err.(*streamError); ok {
					code, msg = se.code, se.message
				}
				c.sendError(cmd.id, code, msg)
				continue
			}
			c.send(map[string]any{"type": "reply", "id": cmd.id, "result": res})
		}
	}
}
