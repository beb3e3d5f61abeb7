package gateway

// What the stream protocols send of a message, encoded once per gateway (feed codecs on
// the gateway's stream hub).

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/feed"
)

// streamCodecs are a message's encodings: msgFrame its WebSocket frame after the
// Transform hook (nil: dropped); compatPush its durable-stream push (stream_compat.go);
// esMessage and esCluster its EventSource events, browsers' and sse-cluster's
// (sse_conn.go).
type streamCodecs struct {
	msgFrame, compatPush, esMessage, esCluster *feed.Codec
}

func (g *Gateway) newStreamCodecs() *streamCodecs {
	h := g.streams
	return &streamCodecs{
		msgFrame: h.Codec(func(m *feed.Msg) []byte {
			data, keep := g.hooks.Transform(m.Stream, m.Seq, m.Data)
			if !keep {
				return nil
			}
			return encodeMessage(m.Stream, m.Seq, m.Time, data)
		}),
		compatPush: h.Codec(func(m *feed.Msg) []byte {
			data, keep := g.hooks.Transform(m.Stream, m.Seq, m.Data)
			if !keep {
				return nil
			}
			return compatPush(data, m.Seq)
		}),
		esMessage: h.Codec(recordEvents(messageEvent)),
		esCluster: h.Codec(recordEvents(clusterRender)),
	}
}

// recordEvents encodes a log message as the EventSource events of its record: one per
// message, "id: <seq>" (or "<seq>.<i>" in a JSON batch).
func recordEvents(render esEvent) func(*feed.Msg) []byte {
	return func(m *feed.Msg) []byte {
		n, _ := strconv.Atoi(m.Header.Get(streamapi.HdrBatch))
		msgs := jsonMessages(streamapi.DSMsg{Seq: m.Seq, Data: m.Data, Batch: n})
		var buf bytes.Buffer
		for i, msg := range msgs {
			render(&buf, eventID(m.Seq, i, len(msgs)), msg)
		}
		return buf.Bytes()
	}
}

// encodeMessage is a message frame: built once per message and shared. It is valid UTF-8
// whatever the record holds (streamapi.ValidText).
func encodeMessage(stream string, seq uint64, t time.Time, data []byte) []byte {
	b := make([]byte, 0, len(stream)+len(data)+96)
	b = append(b, `{"type":"message","stream":`...)
	b = streamapi.AppendString(b, stream)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	data = streamapi.ValidText(data) // a text frame: a record stored before writes were checked
	if json.Valid(data) {
		b = append(b, data...)
	} else {
		q, _ := json.Marshal(string(data))
		b = append(b, q...)
	}
	return append(b, '}')
}
