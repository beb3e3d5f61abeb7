package stream

// Idempotent producers: one state machine for the Durable Streams protocol's
// Producer-Id/-Epoch/-Seq (POST /ds) and the WebSocket publish frame's producerId,
// producerEpoch and producerSeq (POST /publish). A producer's (id, epoch, seq) goes into
// the headers of the log message that carries its data, so it is committed atomically
// with it; the view below is rebuilt from those headers at the first request of an
// activation (dsLoad), and follows every append.
//
// Per producer the object keeps its epoch, its last seq and the log seqs of (at least) its
// last prodWindow messages, so that a retry of any of them is answered with the seq the
// original got. A stream keeps at most maxProducers producers; past that the ones that
// wrote longest ago are forgotten (a forgotten producer's next write starts a new epoch).
// A stream with no Durable Streams configuration (one used over WebSocket only) rebuilds
// its producers from its last prodScan messages, lazily, when a producer first writes.

import (
	"context"
	"strconv"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

const (
	// prodWindow is how many of a producer's last writes a retry is recognized among
	// with its original seq (older ones are answered CodeDuplicateUnknown).
	prodWindow = 1024
	// maxProducers bounds the producers a stream remembers.
	maxProducers = 1024
	// prodScan is how many of the log's last messages rebuild the producers of a stream
	// used over WebSocket only.
	prodScan = 1024
)

type prodState struct {
	epoch, seq uint64
	// logSeqs are the log seqs of the producer's last writes, seqs seq-len+1 .. seq of this
	// epoch (fewer after a rebuild that did not see them all).
	logSeqs []uint64
}

// logSeqOf is the log seq of the producer's write seq of its current epoch, if kept.
func (p *prodState) logSeqOf(seq uint64) (uint64, bool) {
	back := p.seq - seq
	if seq > p.seq || back >= uint64(len(p.logSeqs)) {
		return 0, false
	}
	return p.logSeqs[uint64(len(p.logSeqs))-1-back], true
}

// record folds one write of p, stored at logSeq, into the producers.
func (d *dsState) record(p streamapi.Producer, logSeq uint64) {
	st, known := d.producers[p.ID]
	if !known && len(d.producers) >= maxProducers {
		d.forgetOldest()
	}
	if !known || st.epoch != p.Epoch || p.Seq != st.seq+1 {
		st.logSeqs = st.logSeqs[:0] // a new epoch, or a rebuild that missed writes
	}
	if len(st.logSeqs) == 2*prodWindow { // keep the last prodWindow, at most twice that
		st.logSeqs = append(st.logSeqs[:0], st.logSeqs[prodWindow:]...)
	}
	st.epoch, st.seq = p.Epoch, p.Seq
	st.logSeqs = append(st.logSeqs, logSeq)
	d.producers[p.ID] = st
}

// forgetOldest drops an eighth of the producers, those whose last write is oldest.
func (d *dsState) forgetOldest() {
	last := func(st prodState) uint64 {
		if len(st.logSeqs) == 0 {
			return 0
		}
		return st.logSeqs[len(st.logSeqs)-1]
	}
	for range max(len(d.producers)/8, 1) {
		oldest, at := "", uint64(1<<64-1)
		for id, st := range d.producers {
			if l := last(st); l < at {
				oldest, at = id, l
			}
		}
		delete(d.producers, oldest)
	}
}

// A producer verdict: what a write of (id, epoch, seq) is, given the producers.
type verdict int

const (
	prodNew         verdict = iota // the next write: store it
	prodDuplicate                  // stored before: answer it, store nothing
	prodStaleEpoch                 // a later epoch wrote already
	prodGap                        // past the next seq
	prodUnknown                    // an unknown producer, at a seq other than 0
	prodBadNewEpoch                // a new epoch at a seq other than 0
)

// check decides a write of p, returning the producer's current state.
func (d *dsState) check(p streamapi.Producer) (verdict, prodState) {
	st, known := d.producers[p.ID]
	switch {
	case known && p.Epoch < st.epoch:
		return prodStaleEpoch, st
	case known && p.Epoch == st.epoch:
		if p.Seq <= st.seq {
			return prodDuplicate, st
		}
		if p.Seq > st.seq+1 {
			return prodGap, st
		}
		return prodNew, st
	case p.Seq != 0: // a new producer or a new epoch starts at seq 0
		if !known {
			return prodUnknown, st
		}
		return prodBadNewEpoch, st
	}
	return prodNew, st
}

// producerHeaders are the log message headers of a write of p.
func producerHeaders(p streamapi.Producer) map[string]string {
	return map[string]string{HdrProdID: p.ID, HdrProdEpoch: strconv.FormatUint(p.Epoch, 10), HdrProdSeq: strconv.FormatUint(p.Seq, 10)}
}

// checkProducer validates a publish item's producer fields.
func checkProducer(p *streamapi.Producer) string {
	switch {
	case p.ID == "" || len(p.ID) > streamapi.MaxProducerID:
		return "producer id must be 1 to " + strconv.Itoa(streamapi.MaxProducerID) + " bytes"
	case p.Epoch > streamapi.MaxProducerSeq || p.Seq > streamapi.MaxProducerSeq:
		return "producer epoch and seq go up to 2^53-1"
	}
	return ""
}

// loadTail rebuilds the producers of a stream without configuration from the log's last
// prodScan messages (a configured stream's dsLoad read its whole log).
func (s *stream) loadTail(ctx context.Context) error {
	d := s.ds
	if d.tail || d.meta != nil {
		return nil
	}
	i := s.st.Log().Info()
	from := max(i.FirstSeq, i.LastSeq-min(i.LastSeq, prodScan-1))
	for from <= i.LastSeq {
		msgs, err := s.st.Log().Read(ctx, from, maxDSScan)
		if err != nil {
			return err
		}
		for _, lm := range msgs {
			d.apply(lm.Headers, lm.Seq)
		}
		if len(msgs) == 0 {
			break
		}
		from = msgs[len(msgs)-1].Seq + 1
	}
	d.tail = true
	return nil
}

// publishProduced is one /publish item of a producer: stored once, whatever the retries.
func (s *stream) publishProduced(ctx context.Context, it streamapi.PublishItem) (streamapi.Published, error) {
	if err := s.loadTail(ctx); err != nil {
		return streamapi.Published{}, err
	}
	d, p := s.ds, *it.Producer
	out := streamapi.Published{ID: it.ID}
	if msg := checkProducer(&p); msg != "" {
		out.Code, out.Message = streamapi.CodeBadProducer, msg
		return out, nil
	}
	v, st := d.check(p)
	switch v {
	case prodNew:
		seq, err := s.st.Log().Append(it.Data, producerHeaders(p))
		if err != nil {
			return out, err
		}
		d.record(p, seq)
		out.Seq = seq
	case prodDuplicate:
		if seq, ok := st.logSeqOf(p.Seq); ok {
			out.Seq, out.Duplicate = seq, true
		} else {
			out.Code = streamapi.CodeDuplicateUnknown
			out.Message = "stored before, at a seq older than the stream keeps for this producer (its last " + strconv.Itoa(prodWindow) + " messages)"
		}
	case prodStaleEpoch:
		out.Code, out.Message, out.ProducerEpoch = streamapi.CodeStaleEpoch, "stale producer epoch: a later epoch of this producer wrote already", &st.epoch
	case prodGap:
		exp, got := st.seq+1, p.Seq
		out.Code, out.Message, out.ExpectedSeq, out.ReceivedSeq = streamapi.CodeProducerGap, "producer sequence gap: seq "+strconv.FormatUint(exp, 10)+" was not stored", &exp, &got
	case prodUnknown:
		var zero uint64
		got := p.Seq
		out.Code, out.Message, out.ExpectedSeq, out.ReceivedSeq = streamapi.CodeProducerUnknown, "the stream keeps no state for this producer: a new producer, or a new epoch, starts at seq 0", &zero, &got
	case prodBadNewEpoch:
		out.Code, out.Message = streamapi.CodeBadProducer, "a new epoch starts at seq 0"
	}
	return out, nil
}
