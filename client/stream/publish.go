package stream

// Idempotent publishes (docs/streams.md, "Idempotent publishes"): each Conn is a producer
// with a random id; its publishes are numbered 0, 1, 2, ... in one epoch and go out in that
// order. One not answered yet stays queued: after a reconnect, or after a publish_failed,
// every unanswered publish is sent again, in order, with the same numbers, and the stream
// stores each once and answers a retry with the seq the original got.
//
// A refused publish leaves a hole the stream will not step over (producer_seq_gap for the
// ones after it): once nothing before them is still unanswered, the ones after it move to
// a new epoch, renumbered from 0, which also fences any copy of the old numbers still in
// flight. A stream that no longer knows the producer (producer_unknown) has it start a new
// epoch too, unless the publish had been sent before: that one may have been stored, and
// fails with the error.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// outPub is one publish not answered yet.
type outPub struct {
	data       json.RawMessage
	epoch, seq uint64
	sent       int // times sent with these numbers
	ch         chan pubResult
}

type pubResult struct {
	seq uint64
	err error
}

func (p *outPub) frameID() string {
	return "p" + strconv.FormatUint(p.epoch, 10) + "." + strconv.FormatUint(p.seq, 10)
}

func newProducerID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ProducerID is the id this Conn's publishes carry (random, one per Conn).
func (c *Conn) ProducerID() string { return c.producer }

// sendPub writes one publish frame (under pmu, so frames leave in seq order).
func (c *Conn) sendPub(ws *websocket.Conn, p *outPub) {
	p.sent++
	_ = c.write(ws, map[string]any{"type": "publish", "id": p.frameID(), "data": p.data,
		"producerId": c.producer, "producerEpoch": p.epoch, "producerSeq": p.seq})
}

// resendPubs sends every unanswered publish again, in order, on ws (after a reconnect or
// a failure).
func (c *Conn) resendPubs(ws *websocket.Conn) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for _, p := range c.pubs {
		c.sendPub(ws, p)
	}
}

// scheduleResend resends the unanswered publishes after a backoff (under pmu).
func (c *Conn) scheduleResend() {
	if c.resendArmed {
		return
	}
	c.resendArmed = true
	wait := c.pubBackoff
	c.pubBackoff = min(c.pubBackoff*2, c.opts.MaxBackoff)
	time.AfterFunc(wait, func() {
		c.pmu.Lock()
		c.resendArmed = false
		c.pmu.Unlock()
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws != nil && c.ctx.Err() == nil {
			c.resendPubs(ws)
		}
	})
}

// pubAnswer handles the server's answer to a publish frame.
func (c *Conn) pubAnswer(ws *websocket.Conn, f frame) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	i := -1
	for k, p := range c.pubs {
		if p.frameID() == f.ID {
			i = k
			break
		}
	}
	if i < 0 {
		return // an answer to a copy of a publish answered already, or renumbered
	}
	p := c.pubs[i]
	earlier := false // an unanswered publish before p in its epoch: the hole may be it
	for _, q := range c.pubs[:i] {
		earlier = earlier || q.epoch == p.epoch
	}
	switch {
	case f.Type == "published":
		c.pubBackoff = 50 * time.Millisecond
		c.donePub(i, pubResult{seq: f.Seq})
	case f.Code == "publish_failed" || f.Code == "unavailable" ||
		(f.Code == "producer_seq_gap" || f.Code == "producer_unknown") && earlier:
		c.scheduleResend() // may or may not be stored: the same numbers again
	case f.Code == "producer_seq_gap" || f.Code == "producer_unknown" && p.sent == 1:
		// Nothing before it can fill the hole, and p was not stored: p and those after it
		// start a new epoch.
		c.epoch++
		c.nextSeq = 0
		for _, q := range c.pubs[i:] {
			q.epoch, q.seq, q.sent = c.epoch, c.nextSeq, 0
			c.nextSeq++
			c.sendPub(ws, q)
		}
	default: // refused, or (producer_unknown of a retry) perhaps stored: the caller decides
		c.donePub(i, pubResult{err: &Error{ID: f.ID, Code: f.Code, Message: f.Message, Stream: f.Stream, Seq: f.Seq, FirstSeq: f.FirstSeq}})
	}
}

// donePub answers and forgets c.pubs[i] (under pmu).
func (c *Conn) donePub(i int, r pubResult) {
	p := c.pubs[i]
	c.pubs = append(c.pubs[:i:i], c.pubs[i+1:]...)
	p.ch <- r
}

// failPubs answers every unanswered publish with err (Close).
func (c *Conn) failPubs(err error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for _, p := range c.pubs {
		p.ch <- pubResult{err: err}
	}
	c.pubs = nil
}

func isPubID(id string) bool { return strings.HasPrefix(id, "p") }
