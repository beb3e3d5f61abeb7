package gateway

// The live part of a Durable Streams read (long-poll, SSE, EventSource) follows the
// stream on the gateway's feed, the same ring and consumer WebSocket subscribers read:
// the stream's object answers the request's first read (its configuration and whether it
// exists, closed, expired; the first page of records), and every record after that comes
// from the feed, at the reader's own offset, with no further request to the object.

import (
	"context"
	"strconv"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/gateway/internal/feed"
)

const (
	// followMsgs and followBytes bound one read from the feed, as the object bounds one
	// /ds/read (maxDSScan records, maxDSRead bytes of data).
	followMsgs  = 1024
	followBytes = 256 << 10
)

// dsFollow is one reader's view of a stream on the feed, after the object's first read.
type dsFollow struct {
	feed     *feed.Feed
	name     string
	implicit bool // a stream used only over WebSocket reads as JSON messages (EventSource)
	meta     stream.DSMeta
	tail     uint64 // the stream's tail offset, as far as known
	closed   bool
}

// follow acquires name's feed for a reader whose first read (from the object) was rd; the
// caller releases the feed (fd.feed.Release).
func (h *httpStreams) follow(ctx context.Context, name string, rd *stream.DSRead) (*dsFollow, error) {
	f, err := h.g.streams.acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	return newFollow(f, name, rd), nil
}

func newFollow(f *feed.Feed, name string, rd *stream.DSRead) *dsFollow {
	return &dsFollow{feed: f, name: name, meta: rd.Meta, tail: rd.Next, closed: rd.Closed}
}

// read is the object's /ds/read from offset from, answered from the feed. ok is false when
// the feed cannot answer it and the object must: a read below a fork's own records (its
// source's), or a record of a new stream under the same name (deleted and created again).
func (d *dsFollow) read(ctx context.Context, from uint64) (rd *stream.DSRead, ok bool, err error) {
	m := &d.meta
	if from < ext(m, m.CreateSeq) {
		return nil, false, nil
	}
	msgs, next, err := d.feed.Read(ctx, own(m, from), followMsgs)
	if err != nil {
		return nil, false, err
	}
	rd = &stream.DSRead{Meta: d.meta, Msgs: []stream.DSMsg{}, Upto: from}
	size, cut := 0, false
	for _, fm := range msgs {
		if fm.Seq != m.CreateSeq && fm.Header.Get(stream.HdrCreate) != "" {
			return nil, false, nil // another incarnation of the stream
		}
		if size += len(fm.Data); size > followBytes && len(rd.Msgs) > 0 {
			cut = true // the rest in the next read
			break
		}
		if len(fm.Data) > 0 {
			n, _ := strconv.Atoi(fm.Header.Get(stream.HdrBatch))
			rd.Msgs = append(rd.Msgs, stream.DSMsg{Seq: ext(m, fm.Seq), Data: fm.Data, Batch: n})
		}
		if fm.Header.Get(stream.HdrClosed) != "" {
			d.closed = true
		}
		rd.Upto = ext(m, fm.Seq+1)
	}
	if !cut {
		rd.Upto = max(rd.Upto, ext(m, next))
	}
	d.tail = max(d.tail, rd.Upto, ext(m, d.feed.Last()+1))
	rd.Next, rd.Closed = d.tail, d.closed
	return rd, true, nil
}

// ext and own map log seqs to offsets and back (a fork's offsets continue its source's),
// as the object does (builtin/stream, fork.go).
func ext(m *stream.DSMeta, seq uint64) uint64 {
	if m.Fork == nil {
		return seq
	}
	return seq - m.CreateSeq + m.Fork.Offset
}

func own(m *stream.DSMeta, off uint64) uint64 {
	if m.Fork == nil {
		return off
	}
	return off - m.Fork.Offset + m.CreateSeq
}
