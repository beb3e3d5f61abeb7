package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamClass is the class of the objects behind durable streams (its contract is package
// builtin/stream/streamapi): the hosts must serve it when Options.Streams is set.
const StreamClass = streamapi.ClassName

// reservedStreamPrefix starts the Durable Streams subscription API's paths
// (/v1/stream/__ds/...), so no stream may be named under it.
const reservedStreamPrefix = "__ds/"

// validStreamName checks a stream name from any path (WebSocket, HTTP, durable-stream's
// subjects, fork sources): the object name grammar, and not under the reserved prefix.
func validStreamName(name string) error {
	if err := names.Validate(name); err != nil {
		return err
	}
	if name == strings.TrimSuffix(reservedStreamPrefix, "/") || strings.HasPrefix(name, reservedStreamPrefix) {
		return fmt.Errorf("stream names under %q are reserved for the subscription API", reservedStreamPrefix)
	}
	return nil
}

// StreamRetention limits the streams whose names match Pattern: tokens separated by "/",
// "*" matching one token and a last ">" one or more. Zero is no limit.
type StreamRetention struct {
	Pattern  string
	MaxMsgs  int64
	MaxBytes int64
	MaxAge   time.Duration
}

// matchPattern reports whether stream name matches a retention pattern.
func matchPattern(pattern, name string) bool {
	p, n := strings.Split(pattern, "/"), strings.Split(name, "/")
	for i, tok := range p {
		if tok == ">" && i == len(p)-1 {
			return len(n) > i
		}
		if i >= len(n) || tok != "*" && tok != n[i] {
			return false
		}
	}
	return len(n) == len(p)
}

// streamHub is the gateway's reading of streams: one feed per stream read here
// (gateway/internal/feed: one JetStream consumer, one ring of recent messages), shared by
// every local reader, and the encodings of a message its readers send.
type streamHub struct {
	g       *Gateway
	started time.Time

	feedsOnce sync.Once
	feeds     *feed.Hub
	// msgFrame is a message's WebSocket frame after the Transform hook (nil: dropped);
	// compatPush its durable-stream push (stream_compat.go); esMessage and esCluster its
	// EventSource events, browsers' and sse-cluster's (sse_conn.go).
	msgFrame, compatPush, esMessage, esCluster *feed.Codec
}

func newStreamHub(g *Gateway) *streamHub {
	return &streamHub{g: g, started: time.Now()}
}

// hub is the gateway's feed hub, made on first use (once JetStream is reached: requests
// are refused before).
func (h *streamHub) hub() *feed.Hub {
	h.feedsOnce.Do(func() {
		g := h.g
		h.feeds = feed.NewHub(g.ctx, feed.Config{
			JetStream: g.js, Conn: g.nc, Logger: g.log, StartTimeout: g.opts.RequestTimeout,
			RingMsgs: g.opts.StreamRingMsgs, RingBytes: g.opts.StreamRingBytes,
			Log: func(name string) (string, string) {
				return wire.LogStream(StreamClass, name), wire.LogSubject(StreamClass, name)
			},
			Open: h.configure,
		})
		h.msgFrame = h.feeds.Codec(func(m *feed.Msg) []byte {
			data, keep := g.transform(m.Stream, m.Seq, m.Data)
			if !keep {
				return nil
			}
			return encodeMessage(m.Stream, m.Seq, m.Time, data)
		})
		h.compatPush = h.feeds.Codec(func(m *feed.Msg) []byte {
			data, keep := g.transform(m.Stream, m.Seq, m.Data)
			if !keep {
				return nil
			}
			return compatPush(data, m.Seq)
		})
		h.esMessage = h.feeds.Codec(recordEvents(messageEvent))
		h.esCluster = h.feeds.Codec(recordEvents(clusterRender))
	})
	return h.feeds
}

// acquire returns name's feed, started; the caller releases it.
func (h *streamHub) acquire(ctx context.Context, name string) (*feed.Feed, error) {
	f, err := h.hub().Acquire(ctx, name)
	if err != nil {
		var se *streamapi.Error
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: err.Error()}
	}
	return f, nil
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

// configure makes the stream object create its log and apply retention: a feed starts
// after it.
func (h *streamHub) configure(ctx context.Context, name string) error {
	r := h.retention(name)
	_, err := h.g.sc.Configure(ctx, name, streamapi.Config{MaxMsgs: r.MaxMsgs, MaxBytes: r.MaxBytes, MaxAgeMs: r.MaxAge.Milliseconds()})
	return err
}

// retention is the configured retention of stream name: the first matching pattern's.
func (h *streamHub) retention(name string) StreamRetention {
	for _, r := range h.g.opts.StreamRetention {
		if matchPattern(r.Pattern, name) {
			return r
		}
	}
	return StreamRetention{}
}

// info reads a stream's retained range from JetStream itself, which applies retention
// limits the object does not see: firstSeq > lastSeq when it holds no message.
func (h *streamHub) info(ctx context.Context, name string) (first, last uint64, err error) {
	st, err := h.g.js.Stream(ctx, wire.LogStream(StreamClass, name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: err.Error()}
	}
	s := st.CachedInfo().State
	if s.Msgs == 0 {
		return s.LastSeq + 1, s.LastSeq, nil
	}
	return s.FirstSeq, s.LastSeq, nil
}

// trimmedTo tells this gateway's feed of name that the stream holds nothing before first,
// as the stream object answered a delete or a checkpoint: its ring drops what it kept of
// those messages.
func (h *streamHub) trimmedTo(name string, first uint64) {
	if f := h.hub().Running(name); first > 0 && f != nil {
		f.Trim(first)
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
