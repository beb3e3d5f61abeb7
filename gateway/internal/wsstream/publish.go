package wsstream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// publishItems are the batch's n publishes not refused.
func publishItems(batch []pubReq, refused []error, n int) []streamapi.PublishItem {
	items := make([]streamapi.PublishItem, 0, n)
	for i, p := range batch {
		if refused[i] == nil {
			items = append(items, streamapi.PublishItem{ID: p.id, Data: p.data, Producer: p.producer})
		}
	}
	return items
}

// publishedFrame is {"type":"published","id":..,"seq":N}, with "duplicate":true for a
// producer's retry of a message stored before (seq is the original's).
func publishedFrame(id string, seq uint64, dup bool) []byte {
	b := make([]byte, 0, len(id)+64)
	b = append(b, `{"type":"published","id":`...)
	b = streamapi.AppendString(b, id)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	if dup {
		b = append(b, `,"duplicate":true`...)
	}
	return append(b, '}')
}

// publishError is the error frame of a producer's publish the stream did not store.
func publishError(id string, p streamapi.Published) map[string]any {
	f := map[string]any{"type": "error", "id": id, "code": p.Code, "message": p.Message}
	for k, v := range map[string]*uint64{"expectedSeq": p.ExpectedSeq, "receivedSeq": p.ReceivedSeq, "producerEpoch": p.ProducerEpoch} {
		if v != nil {
			f[k] = *v
		}
	}
	return f
}

// frameProducer reads a publish frame's idempotent producer: producerId, producerEpoch
// and producerSeq, all three or none (as the HTTP protocol's Producer-Id, -Epoch, -Seq).
// A non-empty msg says what is wrong.
func frameProducer(f map[string]json.RawMessage) (p *streamapi.Producer, msg string) {
	rid, hasID := f["producerId"]
	re, hasEpoch := f["producerEpoch"]
	rs, hasSeq := f["producerSeq"]
	if !hasID && !hasEpoch && !hasSeq {
		return nil, ""
	}
	if !hasID || !hasEpoch || !hasSeq {
		return nil, "producerId, producerEpoch and producerSeq go together"
	}
	p = &streamapi.Producer{}
	if !rawString(rid, &p.ID) || p.ID == "" || len(p.ID) > streamapi.MaxProducerID {
		return nil, fmt.Sprintf("producerId must be a string of 1 to %d bytes", streamapi.MaxProducerID)
	}
	if !rawCount(re, &p.Epoch) || !rawCount(rs, &p.Seq) {
		return nil, "producerEpoch and producerSeq want integers from 0 to 2^53-1"
	}
	return p, ""
}

// rawCount reads a raw JSON integer from 0 to 2^53-1 written in plain digits.
func rawCount(raw json.RawMessage, n *uint64) bool {
	if len(raw) == 0 || len(raw) > 16 || len(raw) > 1 && raw[0] == '0' {
		return false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	v, err := strconv.ParseUint(string(raw), 10, 64)
	*n = v
	return err == nil && v <= streamapi.MaxProducerSeq
}

// publishAttempt is how long a publish batch whose every message names a producer waits
// for the object's answer before it is sent again. Such a batch is safe to resend: the
// object answers a producer's repeat with the original seq and stores nothing twice. A
// request lost on the way (core NATS is at most once: one sent through a NATS server as
// it dies is gone) then costs one attempt, not the whole request timeout, and so does
// everything queued behind it, since a connection's publishes are answered in order. An
// attempt is shorter than a JetStream leader election (4-9 s on a 3-node cluster): a
// commit held up by one is sent again once or twice, and the repeats are answered as
// duplicates once it lands.
var publishAttempt = 4 * time.Second // a variable for the tests

// publish sends one /publish of items to the connection's stream, resending it after
// publishAttempt while ctx allows when it is idempotent (every item names a producer).
func (c *streamConn) publish(ctx context.Context, items []streamapi.PublishItem) ([]streamapi.Published, error) {
	idempotent := true
	for _, it := range items {
		idempotent = idempotent && it.Producer != nil
	}
	if !idempotent {
		return c.g.sc.Publish(ctx, c.primary, items)
	}
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		out, err := c.g.sc.Publish(actx, c.primary, items)
		lapsed := actx.Err() != nil
		cancel()
		if err == nil || ctx.Err() != nil || !lapsed {
			return out, err
		}
		c.g.log.Warn("publish unanswered; sending it again (its producer makes a repeat harmless)",
			"stream", c.primary, "messages", len(items), "after", publishAttempt)
	}
}
