package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/status"
	"github.com/holdfast/holdfast/internal/wire"
)

// streamClass is the built-in Stream class (gateway.StreamClass).
const streamClass = "Stream"

// TestStreamFailoverWhilePublishing SIGKILLs the object host owning a stream while
// several publishers publish to it over WebSocket and subscribers read it through the
// gateway. Every message answered "published" must reach every subscriber exactly once,
// all subscribers must see seqs 1..last with no gap and no repeat, and no subscriber may
// be disconnected. A publish answered "publish_failed" (its outcome is unknown: the host
// may have stored it and died before answering) is retried with the same id; the
// protocol does not deduplicate by id, so such a message may be stored twice, at two
// seqs, and the test allows exactly that and nothing else. Two members of a consumer
// group read the stream too: together they must get every message (at least once; a
// claim in flight at the kill may be handed out again), and stay connected as well.
func TestStreamFailoverWhilePublishing(t *testing.T) {
	skipShort(t)
	c := startCluster(t, "host-a", "host-b", "host-c")
	const (
		stream      = "sfail"
		publishers  = 4
		subscribers = 3
		pipeline    = 8 // publishes in flight per publisher
	)
	wsBase := "ws" + strings.TrimPrefix(c.gwURL, "http") + "/v1/stream/" + stream

	// Subscribers first, so that they see everything live (and by replay for the first).
	subs := make([]*streamReader, subscribers)
	for i := range subs {
		query := "?from=1"
		if i == 0 {
			query = "?client=sub0" // a durable client: its acks go to the stream object, across the failover
		}
		subs[i] = dialStreamReader(t, wsBase+query, fmt.Sprintf("sub%d", i))
	}
	members := make([]*streamReader, 2)
	for i := range members {
		members[i] = dialStreamReader(t, wsBase+fmt.Sprintf("?group=g&client=m%d&window=64", i), fmt.Sprintf("member%d", i))
	}
	pubs := make([]*streamPublisher, publishers)
	stop := make(chan struct{})
	hardStop := time.Now().Add(60 * time.Second)
	for i := range pubs {
		pubs[i] = dialStreamPublisher(t, wsBase+"?from=latest", fmt.Sprintf("p%d", i), pipeline)
		go pubs[i].run(stop, hardStop)
	}
	acked := func() (n int) {
		for _, p := range pubs {
			n += p.ackedCount()
		}
		return n
	}

	natstest.WaitFor(t, "publishes before the kill", 30*time.Second, func() bool { return acked() >= 400 })
	victim := c.ownerOf(streamClass, stream)
	if c.hosts[victim] == nil {
		t.Fatalf("%s's lease names host %q, not one of ours", stream, victim)
	}
	before := acked()
	killedAt := time.Now()
	c.hosts[victim].signal(t, syscall.SIGKILL)
	natstest.WaitFor(t, "the owner to die", 10*time.Second, c.hosts[victim].exited)
	natstest.WaitFor(t, "publishes after the kill", 45*time.Second, func() bool { return acked() >= before+400 })
	t.Logf("%s: owner %s killed after %d acked publishes; %d more acked within %v", stream, victim, before, acked()-before, time.Since(killedAt).Round(time.Millisecond))
	close(stop)
	for _, p := range pubs {
		p.wait(t)
	}
	if now := c.ownerOf(streamClass, stream); now == victim || now == "" {
		t.Errorf("%s's lease is held by %q after its owner %s was killed", stream, now, victim)
	}

	last := c.streamLastSeq(stream)
	for _, s := range subs {
		natstest.WaitFor(t, s.name+" to read up to seq "+fmt.Sprint(last), 30*time.Second, func() bool { return s.upTo() >= last })
	}
	natstest.WaitFor(t, "the group to read up to seq "+fmt.Sprint(last), 30*time.Second, func() bool {
		seen := map[uint64]bool{}
		for _, m := range members {
			for _, d := range m.deliveries() {
				seen[d.seq] = true
			}
		}
		return len(seen) == int(last)
	})
	for _, s := range append(subs, members...) {
		s.close()
	}
	groupGot := map[uint64]int{}
	for _, m := range members {
		got := m.result(t)
		for _, d := range got {
			groupGot[d.seq]++
		}
		t.Logf("%s: %d messages", m.name, len(got))
	}
	repeats := 0
	for seq := uint64(1); seq <= last; seq++ {
		if groupGot[seq] == 0 {
			t.Errorf("group: seq %d never delivered", seq)
		}
		repeats += max(groupGot[seq]-1, 0)
	}
	t.Logf("group: %d messages delivered again (claims in flight at the kill, or past their deadline)", repeats)

	// Every subscriber: seqs 1..last, each once, in order; no close, no error frame.
	var ref []streamDelivery
	for i, s := range subs {
		got := s.result(t)
		if len(got) != int(last) {
			t.Errorf("%s: %d messages, want %d (seqs 1..%d)", s.name, len(got), last, last)
		}
		for j, d := range got {
			if d.seq != uint64(j+1) {
				t.Fatalf("%s: message %d has seq %d, want %d: a gap, a repeat or a reorder", s.name, j, d.seq, j+1)
			}
		}
		if i == 0 {
			ref = got
			continue
		}
		for j := range min(len(got), len(ref)) {
			if got[j].id != ref[j].id {
				t.Errorf("%s: seq %d holds %q, %s got %q", s.name, j+1, got[j].id, subs[0].name, ref[j].id)
			}
		}
	}
	// Every acked publish is at its seq; an id stored more than once was answered
	// publish_failed at least that many times minus one.
	stored := map[string]int{}
	for _, d := range ref {
		stored[d.id]++
	}
	var ok, failed, retried int
	for _, p := range pubs {
		for id, r := range p.results(t) {
			if r.seq == 0 {
				t.Errorf("%s: never acknowledged", id)
				continue
			}
			ok++
			failed += r.failed
			if r.failed > 0 {
				retried++
			}
			if r.seq > last || ref[r.seq-1].id != id {
				t.Errorf("%s: published at seq %d, which subscribers got as %q", id, r.seq, func() string {
					if r.seq > last {
						return "nothing"
					}
					return ref[r.seq-1].id
				}())
			}
			if n := stored[id]; n < 1 || n > 1+r.failed {
				t.Errorf("%s: stored %d times, after %d publish_failed answers", id, n, r.failed)
			}
			delete(stored, id)
		}
	}
	for id, n := range stored {
		t.Errorf("%s: stored %d times but never published by the test", id, n)
	}
	t.Logf("%s: last seq %d; %d publishes acknowledged, %d publish_failed answers on %d of them (retried with the same id); %d duplicates stored",
		stream, last, ok, failed, retried, int(last)-ok)
}

// ownerOf returns the host id holding the lease of class/name, or "".
func (c *cluster) ownerOf(class, name string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	owner, err := status.Owner(ctx, c.js, class, name)
	if err != nil {
		c.t.Fatalf("owner of %s: %v", name, err)
	}
	return owner
}

// streamLastSeq reads the last seq of a stream's log from JetStream.
func (c *cluster) streamLastSeq(name string) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, wire.LogStream(streamClass, name))
	if err != nil {
		c.t.Fatalf("log of %s: %v", name, err)
	}
	return s.CachedInfo().State.LastSeq
}

// streamDelivery is one message a subscriber got: its seq and the publish id in its data.
type streamDelivery struct {
	seq uint64
	id  string
}

// streamReader is a subscriber: it reads every frame, acks every message, and records
// what it got and anything that ended or disturbed it.
type streamReader struct {
	name string
	conn *websocket.Conn
	done chan struct{}

	mu      sync.Mutex
	got     []streamDelivery
	errs    []string
	closing bool
}

func dialStreamReader(t *testing.T, url, name string) *streamReader {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s := &streamReader{name: name, conn: conn, done: make(chan struct{})}
	go s.read()
	return s
}

func (s *streamReader) read() {
	defer close(s.done)
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			s.mu.Lock()
			if !s.closing {
				s.errs = append(s.errs, "connection ended: "+err.Error())
			}
			s.mu.Unlock()
			return
		}
		var f struct {
			Type string `json:"type"`
			Seq  uint64 `json:"seq"`
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &f); err != nil || f.Type != "message" {
			s.mu.Lock()
			s.errs = append(s.errs, "unexpected frame: "+string(b))
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		s.got = append(s.got, streamDelivery{f.Seq, f.Data.ID})
		s.mu.Unlock()
		ack, _ := json.Marshal(map[string]any{"type": "ack", "seq": f.Seq})
		if err := s.conn.WriteMessage(websocket.TextMessage, ack); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, "ack: "+err.Error())
			s.mu.Unlock()
			return
		}
	}
}

// deliveries is a copy of what the reader got so far.
func (s *streamReader) deliveries() []streamDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// upTo is the seq of the last message received.
func (s *streamReader) upTo() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		return 0
	}
	return s.got[len(s.got)-1].seq
}

// close ends the connection on purpose.
func (s *streamReader) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_ = s.conn.Close()
	<-s.done
}

// result is what the subscriber got; anything that disturbed it fails the test.
func (s *streamReader) result(t *testing.T) []streamDelivery {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errs {
		t.Errorf("%s: %s", s.name, e)
	}
	return s.got
}

// publishResult is the fate of one publish id.
type publishResult struct {
	seq    uint64 // the published answer's seq; 0 when never acknowledged
	failed int    // publish_failed answers before it
}

// streamPublisher publishes numbered messages with up to pipeline of them in flight and
// retries, with the same id, each one answered publish_failed.
type streamPublisher struct {
	name     string
	conn     *websocket.Conn
	slots    chan struct{} // a token per publish in flight
	retry    chan string   // ids answered publish_failed, to send again
	answered chan struct{} // poked on each acknowledgement
	readDone chan struct{}
	runDone  chan struct{}

	mu      sync.Mutex
	res     map[string]*publishResult
	acked   int
	errs    []string
	closing bool
}

func dialStreamPublisher(t *testing.T, url, name string, pipeline int) *streamPublisher {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p := &streamPublisher{name: name, conn: conn, slots: make(chan struct{}, pipeline), retry: make(chan string, pipeline),
		answered: make(chan struct{}, 1), readDone: make(chan struct{}), runDone: make(chan struct{}), res: map[string]*publishResult{}}
	go p.read()
	return p
}

func (p *streamPublisher) send(id string) error {
	b, _ := json.Marshal(map[string]any{"type": "publish", "id": id, "data": map[string]string{"id": id}})
	return p.conn.WriteMessage(websocket.TextMessage, b)
}

// run publishes until stop (or hardStop), then waits for every publish in flight to be
// answered, retrying the failed ones until they are acknowledged.
func (p *streamPublisher) run(stop <-chan struct{}, hardStop time.Time) {
	defer close(p.runDone)
	deadline := time.After(time.Until(hardStop))
	next := 0
	for stopping := false; ; {
		if stopping && p.settled() {
			return
		}
		var slots chan struct{}
		if !stopping {
			slots = p.slots
		}
		select {
		case id := <-p.retry:
			if p.send(id) != nil {
				return
			}
		case slots <- struct{}{}:
			next++
			id := fmt.Sprintf("%s-%d", p.name, next)
			p.mu.Lock()
			p.res[id] = &publishResult{}
			p.mu.Unlock()
			if p.send(id) != nil {
				return
			}
		case <-stop:
			stop, stopping = nil, true
		case <-p.answered:
		case <-p.readDone:
			return
		case <-deadline:
			return
		}
	}
}

// settled reports whether every publish was acknowledged.
func (p *streamPublisher) settled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked == len(p.res)
}

// read takes the answers: published frees a slot; publish_failed queues a retry.
func (p *streamPublisher) read() {
	defer close(p.readDone)
	for {
		_, b, err := p.conn.ReadMessage()
		if err != nil {
			p.mu.Lock()
			if !p.closing {
				p.errs = append(p.errs, "connection ended: "+err.Error())
			}
			p.mu.Unlock()
			return
		}
		var f struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Seq  uint64 `json:"seq"`
			Code string `json:"code"`
		}
		_ = json.Unmarshal(b, &f)
		if f.Type == "message" {
			continue // its own subscription (from=latest): not what this test reads
		}
		p.mu.Lock()
		r := p.res[f.ID]
		var ok, retry bool
		switch {
		case r == nil:
			p.errs = append(p.errs, "answer for no publish: "+string(b))
		case f.Type == "published" && r.seq == 0 && f.Seq > 0:
			r.seq = f.Seq
			p.acked++
			ok = true
		case f.Type == "error" && f.Code == "publish_failed" && r.seq == 0:
			r.failed++
			retry = true
		default:
			p.errs = append(p.errs, "unexpected answer: "+string(b))
		}
		p.mu.Unlock()
		switch {
		case ok:
			<-p.slots
			select {
			case p.answered <- struct{}{}:
			default:
			}
		case retry:
			p.retry <- f.ID // its slot stays taken until it is acknowledged
		}
	}
}

func (p *streamPublisher) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// wait waits for run to end (every publish answered), then closes the connection.
func (p *streamPublisher) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.runDone:
	case <-time.After(70 * time.Second):
		t.Fatalf("%s: publishes still unanswered", p.name)
	}
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	_ = p.conn.Close()
	<-p.readDone
}

// results is the fate of every id; connection trouble and stray answers fail the test.
func (p *streamPublisher) results(t *testing.T) map[string]*publishResult {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		t.Errorf("%s: %s", p.name, e)
	}
	return p.res
}
