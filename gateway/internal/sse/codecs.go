package sse

// What the event streams send of a message, encoded once per gateway (feed codecs on the
// gateway's stream hub).

import (
	"bytes"
	"strconv"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
)

// codecs are a message's EventSource events, browsers' and sse-cluster's: every event of
// its record (reader.go).
type codecs struct {
	esMessage, esCluster *feed.Codec
}

func newCodecs(h *streamhub.Hub) codecs {
	return codecs{
		esMessage: h.Codec(recordEvents(messageEvent)),
		esCluster: h.Codec(recordEvents(clusterRender)),
	}
}

// recordEvents encodes a log message as the EventSource events of its record: one per
// message, "id: <seq>" (or "<seq>.<i>" in a JSON batch).
func recordEvents(render esEvent) func(*feed.Msg) []byte {
	return func(m *feed.Msg) []byte {
		n, _ := strconv.Atoi(m.Header.Get(streamapi.HdrBatch))
		msgs := dsread.JSONMessages(streamapi.DSMsg{Seq: m.Seq, Data: m.Data, Batch: n})
		var buf bytes.Buffer
		for i, msg := range msgs {
			render(&buf, eventID(m.Seq, i, len(msgs)), msg)
		}
		return buf.Bytes()
	}
}
