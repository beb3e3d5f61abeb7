// Package dsread reads Durable Streams as their readers see them — an HTTP catch-up or
// long-poll, a live SSE response, an EventSource, a fork's inherited records: the stream's
// object answers the first read (its configuration, whether it exists, its tail), the
// records come from the stream's log at the gateway (its feed's ring, else batched reads),
// a fork's offsets below its fork point are read from its source, and a reader that stays
// follows the stream on the feed (Follow) with no further request to the object.
//
// It imports the Stream contract, the typed client and the stream hub; never a protocol
// package, the gateway, the Stream class or the runtime.
package dsread

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
	// followMsgs and FollowBytes bound one read from the feed, as the object bounds one
	// /ds/read (maxDSScan records, maxDSRead bytes of data).
	followMsgs  = 1024
	FollowBytes = 256 << 10
)

// Follow is one reader's view of a stream on the feed, after the object's first read.
type Follow struct {
	Feed     *feed.Feed
	name     string
	implicit bool // a stream used only over WebSocket reads as JSON messages (EventSource)
	meta     streamapi.DSMeta
	tail     uint64 // the stream's tail offset, as far as known
	closed   bool
	// Src are the feed's messages of the last read's records, in order (nil when the
	// object answered it): their encodings are shared by every reader (an EventSource's).
	Src []*feed.Msg
}

// Follow acquires name's feed for a reader whose first read (from the object) was rd; the
// caller releases the feed (fl.Feed.Release). implicit: the stream may be one used only
// over WebSocket, read as JSON messages (an EventSource's).
func (r *Reader) Follow(ctx context.Context, name string, rd *streamapi.DSRead, implicit bool) (*Follow, error) {
	f, err := r.streams.Acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	return NewFollow(f, name, rd, implicit), nil
}

// NewFollow is Follow on a feed the caller acquired already.
func NewFollow(f *feed.Feed, name string, rd *streamapi.DSRead, implicit bool) *Follow {
	return &Follow{Feed: f, name: name, implicit: implicit, meta: rd.Meta, tail: rd.Next, closed: rd.Closed}
}

// read is the object's /ds/read from offset from, answered from the feed. ok is false when
// the feed cannot answer it and the object must: a read below a fork's own records (its
// source's), or a record of a new stream under the same name (deleted and created again).
func (d *Follow) read(ctx context.Context, from uint64) (rd *streamapi.DSRead, ok bool, err error) {
	m := &d.meta
	if from < m.Offset(m.CreateSeq) {
		return nil, false, nil
	}
	msgs, next, err := d.Feed.Read(ctx, m.Seq(from), followMsgs)
	if err != nil {
		return nil, false, err
	}
	p := records(m, msgs, from, next, 0)
	if p.stale {
		return nil, false, nil // another incarnation of the stream
	}
	if p.closed {
		d.closed = true
	}
	rd = &streamapi.DSRead{Meta: d.meta, Msgs: p.msgs, Upto: p.upto}
	d.Src = p.src
	d.tail = max(d.tail, rd.Upto, m.Offset(d.Feed.Last()+1))
	rd.Next, rd.Closed = d.tail, d.closed
	return rd, true, nil
}

// page is the records of a read, from the log messages read at offset from on.
type page struct {
	msgs   []streamapi.DSMsg
	src    []*feed.Msg // the log messages of msgs
	upto   uint64      // the offset after the last message scanned
	cut    bool        // stopped at the page's byte bound: more follow at once
	closed bool        // a message closed the stream
	stale  bool        // a message of another incarnation of the stream came (it was made again)
}

// records turns log messages, read from the log seq of offset from on (next: the seq the
// read stopped before), into a page of the records of meta's stream: the messages with
// data, up to FollowBytes of it, stopping at offset below when set (a fork's read of its
// source).
func records(m *streamapi.DSMeta, msgs []*feed.Msg, from, next, below uint64) page {
	p := page{msgs: []streamapi.DSMsg{}, upto: from}
	size := 0
	for _, fm := range msgs {
		off := m.Offset(fm.Seq)
		if below > 0 && off >= below {
			p.upto = below
			return p
		}
		if fm.Seq != m.CreateSeq && fm.Header.Get(streamapi.HdrCreate) != "" {
			p.stale = true
			return p
		}
		if size += len(fm.Data); size > FollowBytes && len(p.msgs) > 0 {
			p.cut = true // the rest in the next read
			return p
		}
		if streamapi.IsMessage(fm.Data) {
			n, _ := strconv.Atoi(fm.Header.Get(streamapi.HdrBatch))
			p.msgs = append(p.msgs, streamapi.DSMsg{Seq: off, Data: fm.Data, Batch: n})
			p.src = append(p.src, fm)
		}
		if fm.Header.Get(streamapi.HdrClosed) != "" {
			p.closed = true
		}
		p.upto = off + 1
	}
	p.upto = max(p.upto, m.Offset(next))
	if below > 0 {
		p.upto = min(p.upto, below)
	}
	return p
}
