package wsstream

// What the WebSocket protocols send of a stored message, encoded once per gateway (feed
// codecs on the gateway's stream hub), after the Transform hook.

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
)

// codecs are a message's encodings: msgFrame its /v1/stream message frame (nil: dropped
// by the Transform hook), compatPush its durable-stream push but the sMsgId (compat.go).
type codecs struct {
	msgFrame, compatPush *feed.Codec
}

func newCodecs(h *streamhub.Hub, hooks *streamhub.Hooks) codecs {
	return codecs{
		msgFrame: h.Codec(func(m *feed.Msg) []byte {
			data, keep := hooks.Transform(m.Stream, m.Seq, m.Data)
			if !keep {
				return nil
			}
			return encodeMessage(m.Stream, m.Seq, m.Time, data)
		}),
		compatPush: h.Codec(func(m *feed.Msg) []byte {
			data, keep := hooks.Transform(m.Stream, m.Seq, m.Data)
			if !keep {
				return nil
			}
			return compatPush(data, m.Seq)
		}),
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
