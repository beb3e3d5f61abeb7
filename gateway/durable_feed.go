package gateway

// The live part of a Durable Streams read (long-poll, SSE, EventSource) follows the
// stream on the gateway's feed, the same ring and consumer WebSocket subscribers read:
// the stream's object answers the request's first read (its configuration and whether it
// exists, closed, expired; the first page of records), and every record after that comes
// from the feed, at the reader's own offset, with no further request to the object.

import (
	"context"
	"strconv"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
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
	meta     streamapi.DSMeta
	tail     uint64 // the stream's tail offset, as far as known
	closed   bool
}

// follow acquires name's feed for a reader whose first read (from the object) was rd; the
// caller releases the feed (fd.feed.Release).
func (h *httpStreams) follow(ctx context.Context, name string, rd *streamapi.DSRead) (*dsFollow, error) {
	f, err := h.g.streams.acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	return newFollow(f, name, rd), nil
}

func newFollow(f *feed.Feed, name string, rd *streamapi.DSRead) *dsFollow {
	return &dsFollow{feed: f, name: name, meta: rd.Meta, tail: rd.Next, closed: rd.Closed}
}

// read is the object's /ds/read from offset from, answered from the feed. ok is false when
// the feed cannot answer it and the object must: a read below a fork's own records (its
// source's), or a record of a new stream under the same name (deleted and created again).
func (d *dsFollow) read(ctx context.Context, from uint64) (rd *streamapi.DSRead, ok bool, err error) {
	m := &d.meta
	if from < m.Offset(m.CreateSeq) {
		return nil, false, nil
	}
	msgs, next, err := d.feed.Read(ctx, m.Seq(from), followMsgs)
	if err != nil {
		return nil, false, err
	}
	rd = &streamapi.DSRead{Meta: d.meta, Msgs: []streamapi.DSMsg{}, Upto: from}
	size, cut := 0, false
	for _, fm := range msgs {
		if fm.Seq != m.CreateSeq && fm.Header.Get(streamapi.HdrCreate) != "" {
			return nil, false, nil // another incarnation of the stream
		}
		if size += len(fm.Data); size > followBytes && len(rd.Msgs) > 0 {
			cut = true // the rest in the next read
			break
		}
		if len(fm.Data) > 0 {
			n, _ := strconv.Atoi(fm.Header.Get(streamapi.HdrBatch))
			rd.Msgs = append(rd.Msgs, streamapi.DSMsg{Seq: m.Offset(fm.Seq), Data: fm.Data, Batch: n})
		}
		if fm.Header.Get(streamapi.HdrClosed) != "" {
			d.closed = true
		}
		rd.Upto = m.Offset(fm.Seq + 1)
	}
	if !cut {
		rd.Upto = max(rd.Upto, m.Offset(next))
	}
	d.tail = max(d.tail, rd.Upto, m.Offset(d.feed.Last()+1))
	rd.Next, rd.Closed = d.tail, d.closed
	return rd, true, nil
}
