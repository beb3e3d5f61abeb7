package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// outcome is what the checker found after one scenario: a row of the summary table.
type outcome struct {
	scenario    string
	published   int // stream messages acknowledged
	increments  int // Counter increments acknowledged (200)
	lost        int // acknowledged, but not stored where the answer said (or a Counter below its 200s)
	seqTwice    int // a seq answered to two different publishes
	duplicated  int // a message stored more than once (or a Counter above its 200s and unsure answers)
	gaps        int // a seq missing from the stream or from a subscriber
	unavailable time.Duration
	disconnects int           // client connections that dropped without the client closing them
	resume      time.Duration // from the fault to the first publish acknowledged after it
	notes       []string

	acks, oks []time.Time // when each publish was acknowledged, each increment answered 200
}

// check stops the workload, reads everything back and returns what it found; each
// problem is also reported on t (t.Errorf), so a scenario fails on any of them.
// faultAt is when the (first) fault was injected.
func (w *workload) check(t *testing.T, faultAt time.Time) outcome {
	t.Helper()
	c := w.c
	o := outcome{scenario: t.Name()}
	stopped := time.Now()
	for _, p := range w.pubs {
		p.finish()
	}
	for _, d := range w.counters {
		d.finish()
	}

	// What the stream holds, read from its leader once its replicas caught up.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logName := wire.LogStream(streamClass, w.stream)
	if err := c.nats.WaitStreamCurrent(ctx, c.js, logName); err != nil {
		t.Errorf("%s: %v", w.stream, err)
	}
	stored := c.readStream(ctx, logName)
	last := uint64(len(stored))

	// Publishes: every acknowledged one is stored at its seq; no seq answered twice; no
	// message stored twice; no seq missing (JetStream numbers without holes, so a hole
	// would be a deletion).
	copies := map[string]int{}
	for seq, id := range stored {
		if id == "" {
			o.gaps++
			t.Errorf("%s: seq %d is missing from the stream", w.stream, seq+1)
			continue
		}
		copies[id]++
	}
	bySeq := map[uint64]string{}
	var acks []time.Time
	for _, p := range w.pubs {
		res, at := p.results()
		acks = append(acks, at...)
		for id, r := range res {
			switch {
			case r.seq == 0:
				t.Errorf("%s: never acknowledged: %v", id, r.err)
				continue
			case r.seq > last || stored[r.seq-1] != id:
				o.lost++
				t.Errorf("%s: acknowledged at seq %d, which the stream holds as %q", id, r.seq, storedAt(stored, r.seq))
			}
			if other, dup := bySeq[r.seq]; dup {
				o.seqTwice++
				t.Errorf("seq %d answered to %s and %s", r.seq, other, id)
			}
			bySeq[r.seq] = id
			o.published++
			if n := copies[id]; n > 1 {
				o.duplicated += n - 1
				t.Errorf("%s: stored %d times, acknowledged at seq %d", id, n, r.seq)
			}
			delete(copies, id)
		}
	}
	for id, n := range copies {
		t.Errorf("%s: stored %d times, never published by the workload", id, n)
	}

	// Subscribers: every one got seqs 1..last, each once, in order, the same messages.
	for _, r := range w.readers {
		name := readerName(r)
		upTo := func() uint64 {
			if got := r.deliveries(); len(got) > 0 {
				return got[len(got)-1].seq
			}
			return 0
		}
		for deadline := time.Now().Add(60 * time.Second); upTo() < last; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				st := r.stats()
				t.Errorf("%s: read up to seq %d of %d in 60 s; its connections: opened %v, dropped %v, failed %v; problems %q",
					name, upTo(), last, clock(st.opens), clock(st.drops), clock(st.failed), r.problems())
				break
			}
		}
		r.close()
		got := r.deliveries()
		for i, d := range got {
			want := uint64(i + 1)
			if d.seq != want {
				o.gaps++
				t.Errorf("%s: message %d has seq %d, want %d: a gap, a repeat or a reorder", name, i, d.seq, want)
				break
			}
			if i < len(stored) && d.id != stored[i] {
				t.Errorf("%s: seq %d holds %q, the stream %q", name, d.seq, d.id, stored[i])
			}
		}
		for _, p := range r.problems() {
			t.Errorf("%s: %s", name, p)
		}
		st := r.stats()
		o.disconnects += len(st.drops)
	}
	for _, p := range w.pubs {
		o.disconnects += len(p.watch.stats().drops)
	}

	// Counters: the value is every 200 plus at most the answers that may or may not have
	// taken effect (504, a dropped connection), and the object's log is one unbroken run.
	var oks []time.Time
	for _, d := range w.counters {
		rs := d.ta.of(d.name)
		final := c.get(d.name)
		var ok, unsure int
		for _, r := range rs {
			switch {
			case r.err != nil && r.status == 0, r.status == http.StatusGatewayTimeout:
				unsure++
			case r.err != nil:
				t.Errorf("POST %s: %v", d.name, r.err)
			case r.status == http.StatusOK:
				ok++
				oks = append(oks, r.end)
			case r.status != http.StatusServiceUnavailable:
				t.Errorf("POST %s: status %d code %q: only 200, 503 and 504 are allowed", d.name, r.status, r.code)
			}
		}
		o.increments += ok
		if final < int64(ok) {
			o.lost += ok - int(final)
			t.Errorf("%s: value %d, below its %d acknowledged increments", d.name, final, ok)
		}
		if final > int64(ok+unsure) {
			o.duplicated += int(final) - ok - unsure
			t.Errorf("%s: value %d, above its %d acknowledged and %d unsure increments", d.name, final, ok, unsure)
		}
		if _, logged := c.logRecords(d.name); logged != final {
			t.Errorf("%s: the log ends at %d, GET says %d", d.name, logged, final)
		}
		o.notes = append(o.notes, fmt.Sprintf("%s=%d (%d ok, %d unsure)", d.name, final, ok, unsure))
	}

	o.acks, o.oks = acks, oks
	pubGap := longestGap(acks, w.began, stopped)
	cntGap := longestGap(oks, w.began, stopped)
	o.unavailable = max(pubGap, cntGap)
	o.resume = -1
	for _, a := range acks {
		if a.After(faultAt) && (o.resume < 0 || a.Sub(faultAt) < o.resume) {
			o.resume = a.Sub(faultAt)
		}
	}
	o.notes = append(o.notes, fmt.Sprintf("last seq %d; longest without a publish ack %v, without an increment %v; first publish ack %v after the fault",
		last, pubGap.Round(time.Millisecond), cntGap.Round(time.Millisecond), o.resume.Round(time.Millisecond)))
	for _, n := range o.notes {
		t.Log(n)
	}
	return o
}

// clock formats times of day, for a failure message.
func clock(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format("15:04:05.000")
	}
	return out
}

func storedAt(stored []string, seq uint64) string {
	if seq == 0 || seq > uint64(len(stored)) {
		return "nothing"
	}
	return stored[seq-1]
}

func readerName(r reader) string {
	switch r := r.(type) {
	case *subscriber:
		return r.name
	case *jsSubscriber:
		return r.name
	case pubReader:
		return r.p.name
	}
	return "?"
}

// longestGap is the longest stretch of [from, to] without one of the times in at.
func longestGap(at []time.Time, from, to time.Time) time.Duration {
	at = slices.Clone(at)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	gap, prev := time.Duration(0), from
	for _, a := range at {
		if a.Before(from) || a.After(to) {
			continue
		}
		gap, prev = max(gap, a.Sub(prev)), a
	}
	return max(gap, to.Sub(prev))
}

// firstAfter is how long after at the first of ts came (at..to: none came before to).
func firstAfter(ts []time.Time, at, to time.Time) time.Duration {
	first := to
	for _, x := range ts {
		if !x.Before(at) && x.Before(first) {
			first = x
		}
	}
	return first.Sub(at)
}

// readStream reads every message of stream from its leader (an ordered consumer; direct
// gets could be answered by a lagging replica) and returns the publish id in each, by
// seq - 1 ("" for a seq that is not there).
func (c *cluster) readStream(ctx context.Context, stream string) []string {
	c.t.Helper()
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		c.t.Fatalf("%s: %v", stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	ids := make([]string, last)
	if last == 0 {
		return ids
	}
	// A consumer or a fetch may fail while the cluster settles: start again after the
	// last seq read, a few times.
	seq, failures := uint64(0), 0
	for seq < last {
		if failures == 10 {
			c.t.Fatalf("%s: read up to seq %d of %d", stream, seq, last)
		}
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq + 1})
		if err != nil {
			failures++
			c.t.Logf("%s: consumer from seq %d: %v", stream, seq+1, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for seq < last {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
			n := 0
			if err == nil {
				for m := range batch.Messages() {
					md, err := m.Metadata()
					if err != nil {
						continue
					}
					n++
					seq = md.Sequence.Stream
					var d struct{ ID string }
					_ = json.Unmarshal(m.Data(), &d)
					if seq <= last {
						ids[seq-1] = d.ID
					}
				}
				err = batch.Error()
			}
			if err != nil || n == 0 {
				failures++
				c.t.Logf("%s: fetch after seq %d: %d messages, %v", stream, seq, n, err)
				break
			}
		}
	}
	return ids
}

// printSummary prints the table of every scenario's outcome.
func printSummary(t *testing.T, rows []outcome) {
	var b strings.Builder
	b.WriteString("| scenario | messages acknowledged | increments acknowledged | lost | duplicated | gaps | longest unavailability | client disconnects |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, o := range rows {
		lost := fmt.Sprint(o.lost)
		if o.seqTwice > 0 {
			lost += fmt.Sprintf(" (+%d seqs answered twice)", o.seqTwice)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %d | %v | %d |\n", strings.TrimPrefix(o.scenario, "TestFaults/"),
			o.published, o.increments, lost, o.duplicated, o.gaps, o.unavailable.Round(10*time.Millisecond), o.disconnects)
	}
	t.Log("fault summary:\n" + b.String())
	fmt.Print("\n" + b.String())
}
