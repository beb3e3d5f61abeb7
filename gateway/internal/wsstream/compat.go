package wsstream

// Drop-in compatibility with durable-stream (github.com/voxoco/durable-stream): its clients
// connect to GET /stream/<subject>?apiKey=K and speak its frames unchanged. The subject is
// a Holdfast stream name, so the same stream is also reachable at /v1/stream/<subject>.
//
// Its protocol, as the original server implements it:
//
//   - A client frame is {"data":X,"cMsgId":N,"clientId":N}. A frame whose data or cMsgId
//     is falsy (in JavaScript's sense: missing, null, false, 0, "") is ignored: neither
//     published nor answered.
//   - A frame whose data.cmd is getStreamInfo, subscribe{startSequence}, unsubscribe,
//     deleteMessages{sequence}, getState or putState{state} is a command; any other frame
//     (an unknown cmd included, as in the original) is published.
//   - Every answer is the client's object, echoed as sent (cMsgId keeps its exact JSON
//     number), plus "ip" and "sequence": the message's seq for a publish, the stream's
//     last seq for a command; getState adds "state".
//   - A stored message is the publisher's object plus "ip"; it is pushed as that object
//     plus "sequence", "pub":1 and "sMsgId". The client acknowledges by echoing the push
//     without "pub"; the next push waits for that ack (the original did so for a late
//     subscriber's backlog only), so a client that never acks costs one message.
//   - durable-stream numbers messages after a counter that starts at 100000000000: the
//     first message is 100000000001. Here compat seq = compatBase + Holdfast seq.
//
// Replies share the connection's byte-bounded outgoing queue; a client that publishes
// without reading is closed with 4008 like any slow consumer.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
)

// compatBase is durable-stream's sequence counter before its first message.
const compatBase = 100000000000

// compatOpsQueue bounds the frames read and not yet handled; past it the reader stops
// reading, so TCP pushes back on the client.
const compatOpsQueue = 256

// compatConn is one durable-stream client connection.
type compatConn struct {
	sc   *streamConn // its queue, writer and context
	name string
	ip   string
	feed *feed.Feed
	wake chan struct{}
	ops  chan map[string]json.RawMessage

	mu         sync.Mutex
	gen        int    // bumped by each subscribe and unsubscribe
	subscribed bool   //
	next       uint64 // next Holdfast seq to push
	inflight   uint64 // sMsgId of the push awaiting its ack, 0 when none
	lastID     uint64
}

// ServeCompat is GET /stream/{subject...}: durable-stream's WebSocket.
func (g *Server) ServeCompat(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	if err := names.ValidateStream(name); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName,
			fmt.Sprintf("subject %q is not a valid stream name (tokens of letters, digits, '_' and '-' separated by '/'): %v", name, err))
		return
	}
	if !g.acceptUpgrade(w, r, "GET /stream/{subject}") {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.RequestTimeout)
	f, err := g.streams.Acquire(ctx, name)
	cancel()
	if err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
		return
	}
	sc := g.newStreamConn(r, name)
	c := &compatConn{sc: sc, name: name, ip: r.RemoteAddr, feed: f, wake: make(chan struct{}, 1),
		ops: make(chan map[string]json.RawMessage, compatOpsQueue)}
	sc.compat = c
	f.Listen(c)
	// A frame over the limit closes the connection with 1009 (compatWS's read limit):
	// the protocol has no error frame.
	sc.accept(w, r, g.compatWS)
}

// start runs the worker and the pusher, once upgraded.
func (c *compatConn) start() {
	c.sc.wg.Add(2)
	go func() { defer c.sc.wg.Done(); c.worker() }()
	go func() { defer c.sc.wg.Done(); c.pusher() }()
}

// end lets the feed go, once the connection is over.
func (c *compatConn) end() {
	c.feed.Unlisten(c)
	c.feed.Release()
}

// message is one client frame, on the session's read loop: a frame the original would
// ignore is ignored, and an ack is applied at once (it never waits behind publishes);
// others wait in line for the worker (a full line holds the read loop, so TCP pushes back
// on the client).
func (c *compatConn) message(data []byte, binary bool) {
	if binary {
		return
	}
	var f map[string]json.RawMessage
	if json.Unmarshal(data, &f) != nil || f == nil {
		return
	}
	if id, ok := f["sMsgId"]; ok && jsTruthy(id) {
		c.ack(id)
		return
	}
	if !jsTruthy(f["data"]) || !jsTruthy(f["cMsgId"]) {
		return
	}
	select {
	case c.ops <- f:
	case <-c.sc.ctx.Done():
	}
}

// jsTruthy is JavaScript's truthiness of a JSON value; a missing value is falsy.
func jsTruthy(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case string:
		return v != ""
	}
	return true
}

var _ feed.Listener = (*compatConn)(nil)

// Appended is the feed's news of a message: one more to push once the last is acked.
func (c *compatConn) Appended(*feed.Msg) { c.poke() }

func (c *compatConn) poke() { poke(c.wake) }

// ack takes the echo of a push; an echo of anything but the push in flight is ignored.
func (c *compatConn) ack(raw json.RawMessage) {
	id, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	if id == c.inflight {
		c.inflight = 0
		c.poke()
	}
	c.mu.Unlock()
}

// compatCommand is the command a frame carries, or "" when it is to be published.
func compatCommand(f map[string]json.RawMessage) (string, map[string]json.RawMessage) {
	var d map[string]json.RawMessage
	if json.Unmarshal(f["data"], &d) != nil {
		return "", nil
	}
	var cmd string
	if json.Unmarshal(d["cmd"], &cmd) != nil {
		return "", nil
	}
	switch cmd {
	case "getStreamInfo", "subscribe", "unsubscribe", "deleteMessages", "getState", "putState":
		return cmd, d
	}
	return "", nil // the original publishes a frame with an unknown cmd
}

// worker handles publishes and commands in the order they arrived; consecutive publishes
// go to the stream object in one batch.
func (c *compatConn) worker() {
	var held map[string]json.RawMessage
	for {
		f := held
		held = nil
		if f == nil {
			select {
			case <-c.sc.ctx.Done():
				return
			case f = <-c.ops:
			}
		}
		if cmd, d := compatCommand(f); cmd != "" {
			if err := c.command(cmd, d, f); streamhub.IsForbidden(err) {
				c.refuse(f, err.(*streamapi.Error))
			} else if err != nil {
				c.fail(err)
				return
			}
			continue
		}
		batch := []map[string]json.RawMessage{f}
	more:
		for len(batch) < maxPublishBatch {
			select {
			case g := <-c.ops:
				if cmd, _ := compatCommand(g); cmd != "" {
					held = g
					break more
				}
				batch = append(batch, g)
			default:
				break more
			}
		}
		if err := c.publish(batch); err != nil {
			c.fail(err)
			return
		}
	}
}

// fail closes the connection: the protocol has no error frame, and a client that
// reconnects finds out what was stored by subscribing.
func (c *compatConn) fail(err error) {
	if c.sc.ctx.Err() == nil {
		c.sc.g.log.Warn("durable-stream connection failed", "stream", c.name, "err", err)
		c.sc.Fail(CloseStreamUnavailable, "stream unavailable; reconnect")
	}
}

func (c *compatConn) reply(f map[string]json.RawMessage, seq uint64) {
	f["ip"], _ = json.Marshal(c.ip)
	f["sequence"] = json.RawMessage(strconv.FormatUint(compatBase+seq, 10))
	c.sc.send(f)
}

// refuse answers a frame that was not carried out (a server hook refused it, or the
// stream refused its message: invalid_utf8): the client's object, echoed, plus "ip" and
// "error": {"code":..,"message":..} instead of "sequence" (the original protocol has no
// error frame). The connection stays usable.
func (c *compatConn) refuse(f map[string]json.RawMessage, err *streamapi.Error) {
	f["ip"], _ = json.Marshal(c.ip)
	delete(f, "sequence")
	f["error"], _ = json.Marshal(map[string]string{"code": err.Code, "message": err.Message})
	c.sc.send(f)
}

func (c *compatConn) publish(batch []map[string]json.RawMessage) error {
	ctx, cancel := context.WithTimeout(c.sc.ctx, c.sc.g.opts.RequestTimeout)
	defer cancel()
	// The AuthorizePublish hook sees the client's data; a refusal is answered in order.
	refused := make([]error, len(batch))
	ipJSON, _ := json.Marshal(c.ip)
	items := make([]streamapi.PublishItem, 0, len(batch))
	for i, f := range batch {
		if refused[i] = c.sc.g.hooks.AuthorizePublish(ctx, c.sc.info, c.name, f["data"]); refused[i] != nil {
			continue
		}
		f["ip"] = ipJSON
		delete(f, "sequence") // set from the seq on every push
		data, _ := json.Marshal(f)
		items = append(items, streamapi.PublishItem{Data: data})
	}
	var out []streamapi.Published
	if len(items) > 0 {
		var err error
		if out, err = c.sc.g.sc.Publish(ctx, c.name, items); err != nil {
			return err
		}
	}
	j := 0
	for i, f := range batch {
		if refused[i] != nil {
			c.refuse(f, refused[i].(*streamapi.Error))
			continue
		}
		if p := out[j]; p.Code != "" {
			c.refuse(f, &streamapi.Error{Code: p.Code, Message: p.Message}) // not stored
		} else {
			c.reply(f, p.Seq)
		}
		j++
	}
	return nil
}

func (c *compatConn) command(cmd string, d, f map[string]json.RawMessage) error {
	g := c.sc.g
	ctx, cancel := context.WithTimeout(c.sc.ctx, g.opts.RequestTimeout)
	defer cancel()
	switch cmd {
	case "subscribe", "getState":
		if err := g.hooks.AuthorizeSubscribe(ctx, c.sc.info, c.name); err != nil {
			return err
		}
	case "deleteMessages", "putState":
		if err := g.hooks.AuthorizePublish(ctx, c.sc.info, c.name, f["data"]); err != nil {
			return err
		}
	}
	first, last, err := g.streams.Info(ctx, c.name)
	if err != nil {
		return err
	}
	c.feed.Trim(first) // the ring may hold what a delete or retention removed since
	switch cmd {
	case "subscribe":
		// As the original: from startSequence inclusive, but nothing old when it is at or
		// past the last message; missing or not positive is from the start.
		var start float64
		_ = json.Unmarshal(d["startSequence"], &start)
		next := uint64(1)
		switch {
		case start >= float64(compatBase+last):
			next = last + 1
		case start > compatBase:
			next = uint64(start) - compatBase
		}
		c.reply(f, last) // the original answers before the backlog
		c.mu.Lock()
		c.gen++
		c.subscribed, c.next, c.inflight = true, next, 0
		c.mu.Unlock()
		c.poke()
	case "unsubscribe":
		c.mu.Lock()
		c.gen++
		c.subscribed, c.inflight = false, 0
		c.mu.Unlock()
		c.reply(f, last)
	case "deleteMessages":
		var s float64
		_ = json.Unmarshal(d["sequence"], &s)
		if s > compatBase && last > 0 {
			upTo := min(uint64(s)-compatBase, last)
			i, err := g.sc.DeleteMessages(ctx, c.name, upTo)
			if err != nil {
				return err
			}
			g.streams.TrimmedTo(c.name, i.FirstSeq)
		}
		c.reply(f, last)
	case "getState":
		st, err := g.sc.State(ctx, c.name)
		if err != nil {
			return err
		}
		if len(st.State) == 0 || string(st.State) == "null" {
			// The original's initial state.
			st.State = json.RawMessage(`{"lock":false,"sequence":` + strconv.Itoa(compatBase) + `}`)
		}
		f["state"] = st.State
		c.reply(f, last)
	case "putState":
		state := d["state"]
		if len(state) == 0 {
			state = json.RawMessage("null")
		}
		if _, err := g.sc.PutState(ctx, c.name, streamapi.PutState{State: state}); err != nil {
			return err
		}
		c.reply(f, last)
	default: // getStreamInfo
		c.reply(f, last)
	}
	return nil
}

// pusher pushes stored messages to a subscribed client one at a time, each after the
// previous one's ack, reading them from the stream's feed.
func (c *compatConn) pusher() {
	ctx, f := c.sc.ctx, c.feed
	for {
		c.mu.Lock()
		gen, ready, from := c.gen, c.subscribed && c.inflight == 0, c.next
		c.mu.Unlock()
		if !ready || from > f.Last() {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
			}
			continue
		}
		msgs, next, err := f.Read(ctx, from, 1)
		if err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			return
		}
		var push []byte
		if len(msgs) > 0 {
			push = msgs[0].Encoded(c.sc.g.codecs.compatPush)
		}
		c.mu.Lock()
		if c.gen != gen || c.next != from {
			c.mu.Unlock()
			continue
		}
		if len(msgs) == 0 || push == nil {
			// Nothing retained up to next, or dropped by the Transform hook: not pushed, no
			// ack awaited.
			c.next = next
			c.mu.Unlock()
			continue
		}
		c.lastID++
		c.inflight, c.next = c.lastID, msgs[0].Seq+1
		push = withSMsgID(push, c.lastID)
		c.mu.Unlock()
		c.sc.enqueue(push)
	}
}

// compatPush is the push of a stored message but its "sMsgId" (withSMsgID adds it per
// connection): the stored object plus "sequence" and "pub". A message published through
// /v1/stream is not such an object (one with "data" and "cMsgId") and is wrapped as
// {"data":...}. Built once per message, after the Transform hook (nil: dropped).
func compatPush(data []byte, seq uint64) []byte {
	data = streamapi.ValidText(data) // a text frame: a record stored before writes were checked
	var f map[string]json.RawMessage
	if json.Unmarshal(data, &f) != nil || f == nil || len(f["data"]) == 0 || len(f["cMsgId"]) == 0 {
		f = map[string]json.RawMessage{}
		if json.Valid(data) {
			f["data"] = data
		} else {
			f["data"], _ = json.Marshal(string(data))
		}
	}
	delete(f, "sMsgId")
	f["sequence"] = json.RawMessage(strconv.FormatUint(compatBase+seq, 10))
	f["pub"] = json.RawMessage("1")
	b, _ := json.Marshal(f)
	return b
}

// withSMsgID is a push with its connection's "sMsgId" added (the object's last field).
func withSMsgID(push []byte, id uint64) []byte {
	b := make([]byte, 0, len(push)+24)
	b = append(b, push[:len(push)-1]...)
	b = append(b, `,"sMsgId":`...)
	b = strconv.AppendUint(b, id, 10)
	return append(b, '}')
}
