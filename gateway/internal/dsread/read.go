package dsread

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
)

// Reading a stream from an offset: the stream's object answers its configuration, tail and
// closure (and restarts a sliding TTL); the records come from the stream's log at the
// gateway (readOne), and a fork's offsets below its fork point from its source, up a chain
// of forks (stitch).

// MaxForkDepth bounds a chain of forks (reads and cascading deletes follow it).
const MaxForkDepth = 32

// Reader reads Durable Streams: through the typed client of their objects and the
// gateway's feeds.
type Reader struct {
	sc      *streamclient.Client
	streams *streamhub.Hub
}

// New is a Reader of the streams sc reaches, with the feeds of hub.
func New(sc *streamclient.Client, hub *streamhub.Hub) *Reader { return &Reader{sc: sc, streams: hub} }

// Read reads the stream's records from offset q.From, a fork's inherited ones included
// (q.Touch restarts a sliding TTL; q.Implicit reads a stream used only over WebSocket as
// JSON; q.Internal reads a soft-deleted source of forks). A 200 with the records, or
// another status with the object's answer.
func (r *Reader) Read(ctx context.Context, name string, q streamapi.DSReadQuery) (int, *streamapi.DSRead, streamapi.DSAnswer, error) {
	return r.stitch(ctx, name, q, 0, 0)
}

// stitch reads name from from (below below, when set): a fork's offsets under its fork
// point come from its source, recursively.
func (r *Reader) stitch(ctx context.Context, name string, q streamapi.DSReadQuery, below uint64, depth int) (int, *streamapi.DSRead, streamapi.DSAnswer, error) {
	if depth > MaxForkDepth {
		return 0, nil, streamapi.DSAnswer{}, fmt.Errorf("stream %q: a chain of more than %d forks", name, MaxForkDepth)
	}
	// A soft-deleted source (depth > 0) still serves its forks.
	q.Internal = q.Internal || depth > 0
	from := q.From
	st, rd, ans, err := r.readOne(ctx, name, q, below)
	if err != nil || st != http.StatusOK {
		return st, rd, ans, err
	}
	if below > 0 && rd.Upto > below {
		rd.Upto = below
	}
	f := rd.Meta.Fork
	if f == nil || from >= f.Offset {
		return st, rd, ans, nil
	}
	lim := f.Offset
	if below > 0 && below < lim {
		lim = below
	}
	sst, srd, sans, err := r.stitch(ctx, f.Source, streamapi.DSReadQuery{From: from}, lim, depth+1)
	if err != nil {
		return 0, nil, streamapi.DSAnswer{}, err
	}
	if sst != http.StatusOK {
		return 0, nil, streamapi.DSAnswer{}, fmt.Errorf("stream %q: its fork source %q answered %d: %s", name, f.Source, sst, sans.Message)
	}
	if srd.Upto < lim || lim < f.Offset {
		rd.Msgs, rd.Upto = srd.Msgs, srd.Upto // the rest in the next read
		return st, rd, ans, nil
	}
	rd.Msgs = append(srd.Msgs, rd.Msgs...)
	return st, rd, ans, nil
}

// readOne reads one stream's own records (a fork's from its fork point; below, when set,
// stops a fork's read of its source at the fork point): the stream's object answers its
// configuration, tail and closure (and restarts a sliding TTL), and the records come from
// the stream's log, through the gateway's feed when one runs (follow.go). A 200 with the
// records, or another status with the object's answer.
func (r *Reader) readOne(ctx context.Context, name string, q streamapi.DSReadQuery, below uint64) (int, *streamapi.DSRead, streamapi.DSAnswer, error) {
	rd, ans, err := r.sc.Read(ctx, name, q)
	if err != nil || ans.Status != http.StatusOK || rd.Upto >= rd.Next || below > 0 && rd.Upto >= below {
		return ans.Status, rd, ans, err
	}
	m := &rd.Meta
	from := rd.Upto
	msgs, next, err := r.streams.ReadLog(ctx, name, m.Seq(from), m.Seq(rd.Next)-1, followMsgs)
	if err != nil {
		return 0, nil, streamapi.DSAnswer{}, err
	}
	if len(msgs) > 0 && msgs[0].Seq > m.Seq(from) {
		ans = streamapi.DSAnswer{Status: http.StatusGone, DSResult: streamapi.DSResult{Message: "the offset is before the earliest retained data", Reason: streamapi.CodeGone}}
		return ans.Status, nil, ans, nil
	}
	p := records(m, msgs, from, next, below)
	rd.Msgs, rd.Upto = p.msgs, min(p.upto, rd.Next)
	if below > 0 && !p.cut && rd.Upto >= rd.Next && rd.Upto < below {
		rd.Upto = below
	}
	return ans.Status, rd, ans, nil
}

// ReadFollowing reads from offset from on fl's feed, or from the object when the feed
// cannot answer (a fork's inherited offsets, a stream created again under the name); nil
// when the object says the stream is not there.
func (r *Reader) ReadFollowing(ctx context.Context, fl *Follow, from uint64) (*streamapi.DSRead, error) {
	rd, ok, err := fl.read(ctx, from)
	if err != nil || ok {
		return rd, err
	}
	st, rd, _, err := r.Read(ctx, fl.name, streamapi.DSReadQuery{From: from, Implicit: fl.implicit})
	if err != nil || st != http.StatusOK {
		return nil, err
	}
	fl.meta, fl.tail, fl.closed, fl.Src = rd.Meta, rd.Next, rd.Closed, nil
	return rd, nil
}

// JSONMessages splits a JSON-mode record into its messages. A record stored before writes
// were checked for UTF-8 is shown as JSON text (streamapi.ValidText).
func JSONMessages(m streamapi.DSMsg) []json.RawMessage {
	m.Data = streamapi.ValidText(m.Data)
	if m.Batch > 1 {
		var elems []json.RawMessage
		if json.Unmarshal(m.Data, &elems) == nil {
			return elems
		}
	}
	if !json.Valid(m.Data) {
		q, _ := json.Marshal(string(m.Data))
		return []json.RawMessage{q}
	}
	return []json.RawMessage{m.Data}
}
