package gateway

import (
	"encoding/json"
	"fmt"
	"strconv"

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
