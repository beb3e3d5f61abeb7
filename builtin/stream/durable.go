package stream

// The Durable Streams protocol's state, kept by the Stream object (issue 4). The gateway
// parses and validates HTTP; the object decides, one request at a time (the input gate),
// what exists, what is closed and which producer writes are new. Appends come in batches
// (dsbatch.go), decided one after another within the batch's event.
//
// Everything that must be atomic with data lives in the log message that carries the data:
// the create record (header Ds-Create, with the initial body), closure (Ds-Closed on the
// final message or on an empty marker), the idempotent producer's (id, epoch, seq) and the
// writer's Stream-Seq. One append is one log message, so a crash either stored all of it
// or none of it; the in-memory view is rebuilt from the log at the first request of an
// activation. The stream's configuration (content type, TTL, expiry) is in storage. A
// create with an initial body, or one that closes, stores its create record and counts
// only once that record is in the log; an empty open create stores no record (DSMeta's
// NoRecord), so that no reader sees anything for it: the storage write alone is the
// create, and the stream's first append takes its first seq.
//
// What readers see as messages is streamapi.IsMessage's rule: records with data. A close
// without a body is a marker record that no reader shows.
//
// The routes and their bodies are package streamapi's (/ds, /ds/batch, /ds/read, /ds/ref).
//
// Offsets are log seqs: a stream's data starts at its CreateSeq and its tail is the log's
// last seq + 1.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/objects"
)

// Log message headers of Durable Streams records (the contract's: gateways read them too).
const (
	HdrCreate    = streamapi.HdrCreate
	HdrClosed    = streamapi.HdrClosed
	HdrBatch     = streamapi.HdrBatch
	HdrProdID    = streamapi.HdrProdID
	HdrProdEpoch = streamapi.HdrProdEpoch
	HdrProdSeq   = streamapi.HdrProdSeq
	HdrStreamSeq = streamapi.HdrStreamSeq
)

const keyDSMeta = "ds/meta"

// dsState is the in-memory view, rebuilt from storage and the log once per activation.
type dsState struct {
	loaded    bool
	meta      *streamapi.DSMeta
	closed    bool
	closedBy  *streamapi.Producer
	producers map[string]prodState // producer.go
	streamSeq string
	// tail: the producers of a stream without configuration were rebuilt from the log's
	// last messages (producer.go).
	tail bool
}

const maxDSScan = 1024

// dsLoad rebuilds the view: the configuration from storage, validated against the log (a
// create record that never reached the log means no stream), then producers, Stream-Seq
// and closure from the stream's records.
func (s *stream) dsLoad(ctx context.Context) error {
	if s.ds != nil && s.ds.loaded {
		return nil
	}
	d := &dsState{producers: map[string]prodState{}}
	b, ok := s.st.Storage().Get(keyDSMeta)
	if ok {
		var m streamapi.DSMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		first := true
		for from := m.CreateSeq; ; {
			msgs, err := s.st.Log().Read(ctx, from, maxDSScan)
			if err != nil {
				return err
			}
			if first && !m.NoRecord && (len(msgs) == 0 || msgs[0].Seq != m.CreateSeq || msgs[0].Headers[HdrCreate] == "") {
				// The create record is not in the log: the create never committed.
				d.loaded = true
				s.ds = d
				return s.st.Storage().Delete(keyDSMeta)
			}
			first = false
			for _, lm := range msgs {
				d.apply(lm.Headers, lm.Seq)
			}
			if len(msgs) < maxDSScan {
				break
			}
			from = msgs[len(msgs)-1].Seq + 1
		}
		d.meta = &m
	}
	d.loaded = true
	s.ds = d
	return nil
}

// apply folds the headers of the record at logSeq into the view.
func (d *dsState) apply(h map[string]string, logSeq uint64) {
	var p *streamapi.Producer
	if id := h[HdrProdID]; id != "" {
		e, _ := strconv.ParseUint(h[HdrProdEpoch], 10, 64)
		q, _ := strconv.ParseUint(h[HdrProdSeq], 10, 64)
		p = &streamapi.Producer{ID: id, Epoch: e, Seq: q}
		d.record(*p, logSeq)
	}
	if v := h[HdrStreamSeq]; v != "" {
		d.streamSeq = v
	}
	if h[HdrClosed] != "" {
		d.closed = true
		d.closedBy = p
	}
}

// dsExpired reports whether the stream's TTL or expiry passed.
func dsExpired(m *streamapi.DSMeta, now time.Time) bool {
	if m.ExpiresAt != "" {
		if t, err := time.Parse(time.RFC3339Nano, m.ExpiresAt); err == nil && !now.Before(t) {
			return true
		}
	}
	if m.TTL != nil && m.Touched > 0 && now.UnixMilli() >= m.Touched+*m.TTL*1000 {
		return true
	}
	return false
}

// dsCurrent loads the view and drops an expired stream; nil meta means no stream.
func (s *stream) dsCurrent(ctx context.Context) error {
	if err := s.dsLoad(ctx); err != nil {
		return err
	}
	if m := s.ds.meta; m != nil && !m.Deleted && dsExpired(m, time.Now()) {
		if len(m.Forks) > 0 {
			return s.dsSoftDelete() // its forks still read its data
		}
		return s.dsDrop()
	}
	return nil
}

// dsDrop deletes the stream: its configuration and its records.
func (s *stream) dsDrop() error {
	if err := s.st.Storage().Delete(keyDSMeta); err != nil {
		return err
	}
	if last := s.st.Log().Info().LastSeq; last > 0 {
		if err := s.st.Log().Trim(last); err != nil {
			return err
		}
	}
	s.ds = &dsState{loaded: true, producers: map[string]prodState{}}
	return nil
}

// dsTouch restarts a sliding TTL.
func (s *stream) dsTouch() error {
	m := s.ds.meta
	if m == nil || m.TTL == nil {
		return nil
	}
	now := time.Now().UnixMilli()
	if now-m.Touched < 200 {
		return nil // a burst of requests: one write is enough
	}
	m.Touched = now
	b, _ := json.Marshal(m)
	return s.st.Storage().Put(keyDSMeta, b)
}

func (s *stream) tail() uint64 { return s.st.Log().Info().LastSeq + 1 }

// next is the stream's tail as an offset (a fork's offsets continue its source's).
func (s *stream) next() uint64 { return s.ds.meta.Offset(s.tail()) }

func dsHeaders(closed bool, p *streamapi.Producer, streamSeq string, batch int) map[string]string {
	h := map[string]string{}
	if closed {
		h[HdrClosed] = "1"
	}
	if p != nil {
		h[HdrProdID] = p.ID
		h[HdrProdEpoch] = strconv.FormatUint(p.Epoch, 10)
		h[HdrProdSeq] = strconv.FormatUint(p.Seq, 10)
	}
	if streamSeq != "" {
		h[HdrStreamSeq] = streamSeq
	}
	if batch > 1 {
		h[HdrBatch] = strconv.Itoa(batch)
	}
	return h
}

func sameTTL(a, b *int64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// dsRoute serves the /ds routes; it writes the status itself.
func (s *stream) dsRoute(w http.ResponseWriter, r *http.Request) {
	status, v, err := s.dsServe(r)
	if err != nil {
		s.ds = nil // the event is undone: rebuild the view from what is committed
		writeError(w, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *stream) dsServe(r *http.Request) (int, any, error) {
	ctx := r.Context()
	if err := s.dsCurrent(ctx); err != nil {
		return 0, nil, err
	}
	d := s.ds
	switch r.Method + " " + r.URL.Path {
	case http.MethodPut + " " + streamapi.RouteDS:
		var c streamapi.DSCreate
		if err := decode(r, &c); err != nil {
			return 0, nil, err
		}
		if m := d.meta; m != nil {
			res := streamapi.DSResult{Next: s.next(), Closed: d.closed, Meta: m}
			if m.Deleted {
				res.Message, res.Reason = "the stream was deleted; its forks still use its name", streamapi.CodeConflict
				return http.StatusConflict, res, nil
			}
			if m.ContentType != c.ContentType || !sameTTL(m.TTL, c.TTL) || m.ExpiresAt != c.ExpiresAt || d.closed != c.Closed || !sameFork(m.Fork, c.Fork) {
				res.Message, res.Reason = "the stream exists with a different configuration", streamapi.CodeConflict
				return http.StatusConflict, res, nil
			}
			return http.StatusOK, res, nil
		}
		if err := streamapi.CheckData(c.ContentType, c.Data); err != nil {
			return 0, nil, err
		}
		// Create the log first so its seq is known.
		if err := s.st.Log().Configure(objects.LogConfig{}); err != nil {
			return 0, nil, err
		}
		m := &streamapi.DSMeta{ContentType: c.ContentType, TTL: c.TTL, ExpiresAt: c.ExpiresAt, CreateSeq: s.tail(), Touched: time.Now().UnixMilli(), Fork: c.Fork}
		if len(c.Data) == 0 && !c.Closed {
			m.NoRecord = true // nothing to store in the log: no reader sees a record for it
		} else {
			h := dsHeaders(c.Closed, nil, "", c.Batch)
			h[HdrCreate] = "1"
			seq, err := s.st.Log().Append(c.Data, h)
			if err != nil {
				return 0, nil, s.appendErr(err)
			}
			m.CreateSeq = seq
		}
		b, _ := json.Marshal(m)
		if err := s.st.Storage().Put(keyDSMeta, b); err != nil {
			return 0, nil, err
		}
		s.ds = &dsState{loaded: true, meta: m, closed: c.Closed, producers: map[string]prodState{}}
		return http.StatusCreated, streamapi.DSResult{Next: s.next(), Closed: c.Closed, Meta: m}, nil
	case http.MethodPost + " " + streamapi.RouteDS:
		var a streamapi.DSAppend
		if err := decode(r, &a); err != nil {
			return 0, nil, err
		}
		return s.dsAppend(a)
	case http.MethodPost + " " + streamapi.RouteDSBatch:
		return s.dsBatch(r)
	case http.MethodGet + " " + streamapi.RouteDSRead:
		q := streamapi.ParseDSReadQuery(r.URL.Query())
		meta := d.meta
		if meta == nil && q.Implicit {
			// A stream used only over WebSocket or EventSource: JSON messages from seq 1.
			meta = &streamapi.DSMeta{ContentType: "application/json", CreateSeq: 1}
		}
		if meta == nil {
			return http.StatusNotFound, noStream, nil
		}
		if meta.Deleted && !q.Internal {
			return http.StatusGone, deleted, nil
		}
		if q.Touch {
			if err := s.dsTouch(); err != nil {
				return 0, nil, err
			}
		}
		// The configuration, the tail and closure; the records are read from the log by
		// the reader itself (gateways read it straight from JetStream).
		out := streamapi.DSRead{Meta: *meta, Next: meta.Offset(s.tail()), Closed: d.closed, Msgs: []streamapi.DSMsg{}}
		out.Upto = max(q.From, meta.Offset(meta.CreateSeq)) // a fork's offsets below are its source's
		return http.StatusOK, out, nil
	case http.MethodDelete + " " + streamapi.RouteDS:
		if d.meta == nil {
			return http.StatusNotFound, noStream, nil
		}
		if d.meta.Deleted {
			return http.StatusGone, deleted, nil
		}
		m := d.meta
		if len(m.Forks) > 0 {
			return http.StatusNoContent, streamapi.DSResult{}, s.dsSoftDelete()
		}
		if err := s.dsDrop(); err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, streamapi.DSResult{Meta: m}, nil // Meta.Fork: the source to release
	case http.MethodPost + " " + streamapi.RouteDSRef:
		var ref streamapi.DSRef
		if err := decode(r, &ref); err != nil {
			return 0, nil, err
		}
		return s.dsRef(ref)
	}
	return 0, nil, notFound(r)
}

// The outcomes for a stream that does not exist (404) and one deleted (410).
var (
	noStream = streamapi.DSResult{Message: "no such stream", Reason: streamapi.CodeNotFound}
	deleted  = streamapi.DSResult{Message: "the stream was deleted", Reason: streamapi.CodeGone}
)

func (s *stream) appendErr(err error) error {
	if errors.Is(err, objects.ErrValueTooLarge) {
		return &streamapi.Error{Status: http.StatusRequestEntityTooLarge, Code: streamapi.CodeTooLarge, Message: err.Error()}
	}
	return err
}

// dsAppend is POST: closure first, then content type, then the producer, then Stream-Seq
// (the protocol's precedence).
func (s *stream) dsAppend(a streamapi.DSAppend) (int, streamapi.DSResult, error) {
	d := s.ds
	if d.meta == nil {
		return http.StatusNotFound, noStream, nil
	}
	if d.meta.Deleted {
		return http.StatusGone, deleted, nil
	}
	closeOnly := len(a.Data) == 0
	res := streamapi.DSResult{Next: s.next()}
	if d.closed {
		res.Closed = true
		if p, c := a.Producer, d.closedBy; p != nil && c != nil && *p == *c {
			res.ProducerEpoch, res.ProducerSeq = &p.Epoch, &p.Seq
			return http.StatusNoContent, res, nil
		}
		if closeOnly && a.Closed {
			return http.StatusNoContent, res, nil
		}
		res.Message, res.Reason = "the stream is closed", streamapi.CodeStreamClosed
		return http.StatusConflict, res, nil
	}
	if !closeOnly && a.ContentType != d.meta.ContentType {
		res.Message, res.Reason = "content type "+a.ContentType+" does not match the stream's "+d.meta.ContentType, streamapi.CodeContentType
		return http.StatusConflict, res, nil
	}
	if !closeOnly {
		// The gateway checked the body too: this keeps a stream from storing what its
		// readers cannot take whatever sent it.
		if err := streamapi.CheckData(d.meta.ContentType, a.Data); err != nil {
			return 0, res, err
		}
	}
	if p := a.Producer; p != nil {
		switch v, st := d.check(*p); v { // producer.go
		case prodStaleEpoch:
			res.ProducerEpoch = &st.epoch
			res.Message, res.Reason = "stale producer epoch", streamapi.CodeStaleEpoch
			return http.StatusForbidden, res, nil
		case prodDuplicate:
			res.ProducerEpoch, res.ProducerSeq = &st.epoch, &st.seq
			return http.StatusNoContent, res, nil
		case prodGap:
			exp := st.seq + 1
			res.ExpectedSeq, res.ReceivedSeq = &exp, &p.Seq
			res.Message, res.Reason = "producer sequence gap", streamapi.CodeProducerGap
			return http.StatusConflict, res, nil
		case prodUnknown:
			var zero uint64
			res.ExpectedSeq, res.ReceivedSeq = &zero, &p.Seq
			res.Message, res.Reason = "a new producer starts at seq 0", streamapi.CodeProducerUnknown
			return http.StatusConflict, res, nil
		case prodBadNewEpoch:
			return 0, res, bad(streamapi.CodeBadProducer, "a new epoch starts at seq 0")
		}
	}
	if a.StreamSeq != "" && d.streamSeq != "" && a.StreamSeq <= d.streamSeq {
		res.Message, res.Reason = "Stream-Seq "+a.StreamSeq+" is not above "+d.streamSeq, streamapi.CodeStreamSeq
		return http.StatusConflict, res, nil
	}
	h := dsHeaders(a.Closed, a.Producer, a.StreamSeq, a.Batch)
	seq, err := s.st.Log().Append(a.Data, h)
	if err != nil {
		return 0, res, s.appendErr(err)
	}
	if err := s.dsTouch(); err != nil {
		return 0, res, err
	}
	d.apply(h, seq)
	res.Next, res.Closed = s.next(), d.closed
	if p := a.Producer; p != nil {
		res.ProducerEpoch, res.ProducerSeq = &p.Epoch, &p.Seq
		if !closeOnly {
			return http.StatusOK, res, nil
		}
	}
	return http.StatusNoContent, res, nil
}
