package feed

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type fixture struct {
	t   *testing.T
	nc  *nats.Conn
	js  jetstream.JetStream
	st  jetstream.Stream
	hub *Hub
}

const testSubject = "test.log.s"

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	s := natstest.Server(t)
	nc := natstest.Conn(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LOG_s", Subjects: []string{testSubject}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.JetStream, cfg.Conn = js, nc
	cfg.Log = func(string) (string, string) { return "LOG_s", testSubject }
	hctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return &fixture{t: t, nc: nc, js: js, st: st, hub: NewHub(hctx, cfg)}
}

func (fx *fixture) publish(n int) {
	fx.t.Helper()
	for range n {
		m := nats.NewMsg(testSubject)
		m.Data = []byte(`{"n":1}`)
		m.Header.Set("Ds-Batch", "1")
		if _, err := fx.js.PublishMsg(context.Background(), m); err != nil {
			fx.t.Fatal(err)
		}
	}
}

func (fx *fixture) acquire() *Feed {
	fx.t.Helper()
	f, err := fx.hub.Acquire(context.Background(), "s")
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(f.Release)
	return f
}

type recorder struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *recorder) Appended(m *Msg) {
	r.mu.Lock()
	r.seqs = append(r.seqs, m.Seq)
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

func seqs(msgs []*Msg) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func TestListenersHearEveryMessageInOrder(t *testing.T) {
	fx := newFixture(t, Config{})
	fx.publish(3) // before the feed: not live
	f := fx.acquire()
	var r recorder
	f.Listen(&r)
	fx.publish(100)
	natstest.WaitFor(t, "100 live messages", 10*time.Second, func() bool { return r.count() == 100 })
	r.mu.Lock()
	for i, s := range r.seqs {
		if s != uint64(i+4) {
			t.Fatalf("listener heard seq %d at %d: %v", s, i, r.seqs[:i+1])
		}
	}
	r.mu.Unlock()
	if f.Last() != 103 {
		t.Fatalf("Last = %d, want 103", f.Last())
	}
	msgs, next, ok := f.Cached(nil, 50, 10)
	if !ok || next != 60 || fmt.Sprint(seqs(msgs)) != "[50 51 52 53 54 55 56 57 58 59]" {
		t.Fatalf("Cached(50, 10) = %v, next %d, ok %v", seqs(msgs), next, ok)
	}
	if m := msgs[0]; m.Header.Get("Ds-Batch") != "1" || string(m.Data) != `{"n":1}` || m.Time.IsZero() || m.Stream != "s" {
		t.Fatalf("message %+v", m)
	}
	// Seqs 1-3 came before the feed: its start read them into the ring.
	if msgs, _, ok := f.Cached(nil, 1, 3); !ok || fmt.Sprint(seqs(msgs)) != "[1 2 3]" {
		t.Fatalf("the log's tail before the feed: %v, %v", seqs(msgs), ok)
	}
	f.Unlisten(&r)
	fx.publish(1)
	natstest.WaitFor(t, "seq 104", 10*time.Second, func() bool { return f.Last() == 104 })
	if r.count() != 100 {
		t.Fatalf("an unlistened listener heard %d messages", r.count()-100)
	}
}

func TestReadBehindTheRingReadsTheLogInBatches(t *testing.T) {
	fx := newFixture(t, Config{RingMsgs: 10})
	fx.publish(700)
	f := fx.acquire()
	fx.publish(50)
	natstest.WaitFor(t, "seq 750", 10*time.Second, func() bool { return f.Last() == 750 })
	if got := f.RingStart(); got != 741 {
		t.Fatalf("RingStart = %d, want 741 (10 messages)", got)
	}
	var all []uint64
	for from := uint64(1); from <= 750; {
		msgs, next, err := f.Read(context.Background(), from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 || next <= from {
			t.Fatalf("Read(%d) = %v, next %d: no progress", from, seqs(msgs), next)
		}
		all = append(all, seqs(msgs)...)
		from = next
	}
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("read seq %d at %d", s, i)
		}
	}
	if len(all) != 750 {
		t.Fatalf("read %d messages, want 750", len(all))
	}
	msgs, _, _ := f.Read(context.Background(), 5, 1)
	if m := msgs[0]; m.Header.Get("Ds-Batch") != "1" || m.Header.Get("Nats-Sequence") != "" || m.Time.IsZero() {
		t.Fatalf("a message read from the log: %+v", m)
	}
}

func TestReadSkipsDeletedMessages(t *testing.T) {
	fx := newFixture(t, Config{RingMsgs: 2})
	fx.publish(10)
	ctx := context.Background()
	if err := fx.st.Purge(ctx, jetstream.WithPurgeSequence(4)); err != nil { // drops 1-3
		t.Fatal(err)
	}
	for _, seq := range []uint64{5, 9, 10} {
		if err := fx.st.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	f := fx.acquire()
	// The start read 4, 6, 7, 8 into the ring, which keeps the last 2.
	if got := f.RingStart(); got != 7 {
		t.Fatalf("RingStart = %d, want 7", got)
	}
	msgs, next, err := f.Read(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	// From the log: the batch runs past the range (to 7, in the ring): nothing else is in it.
	if fmt.Sprint(seqs(msgs)) != "[4 6]" || next != 7 {
		t.Fatalf("Read(1) = %v, next %d; want [4 6], next 7", seqs(msgs), next)
	}
	msgs, next, _ = f.Read(ctx, next, 100)
	if fmt.Sprint(seqs(msgs)) != "[7 8]" || next != 11 {
		t.Fatalf("Read(7) = %v, next %d; want [7 8], next 11 (9 and 10 are deleted)", seqs(msgs), next)
	}
	// A batch that ends short of its range (9 and 10 deleted, nothing stored after them) is
	// checked with the leader before the rest counts as empty.
	msgs, next, err = f.fetch(ctx, 1, 10, 100)
	if err != nil || fmt.Sprint(seqs(msgs)) != "[4 6 7 8]" || next != 11 {
		t.Fatalf("fetch(1, 10) = %v, next %d, %v; want [4 6 7 8], next 11", seqs(msgs), next, err)
	}
	fx.publish(2) // 11, 12
	natstest.WaitFor(t, "seq 12", 10*time.Second, func() bool { return f.Last() == 12 })
	msgs, next, _ = f.Read(ctx, 9, 100)
	if fmt.Sprint(seqs(msgs)) != "[11 12]" || next != 13 {
		t.Fatalf("Read(9) = %v, next %d", seqs(msgs), next)
	}
	if msgs, next, _ = f.Read(ctx, 13, 100); len(msgs) != 0 || next != 13 {
		t.Fatalf("Read past the last seq = %v, next %d", seqs(msgs), next)
	}
}

func TestRingBoundsBytes(t *testing.T) {
	fx := newFixture(t, Config{RingBytes: 20 * (msgOverhead + 64)})
	f := fx.acquire()
	fx.publish(100)
	natstest.WaitFor(t, "seq 100", 10*time.Second, func() bool { return f.Last() == 100 })
	start := f.RingStart()
	if start < 75 || start > 85 {
		t.Fatalf("RingStart = %d: the ring holds %d messages, want about 20", start, 101-start)
	}
	c := fx.hub.Codec(func(m *Msg) []byte { return make([]byte, 4*(msgOverhead+64)) })
	msgs, _, _ := f.Cached(nil, start, 100)
	for _, m := range msgs {
		m.Encoded(c) // the encodings count towards the bound at the next append
	}
	fx.publish(1)
	natstest.WaitFor(t, "seq 101", 10*time.Second, func() bool { return f.Last() == 101 })
	if n := 101 - f.RingStart() + 1; n > 6 {
		t.Fatalf("with encodings of 4x a message, the ring holds %d messages, want about 4", n)
	}
	if got := f.size.Load(); got > int64(fx.hub.cfg.RingBytes) || got <= 0 {
		t.Fatalf("ring size %d, bound %d", got, fx.hub.cfg.RingBytes)
	}
}

func TestCodecEncodesOnce(t *testing.T) {
	fx := newFixture(t, Config{})
	f := fx.acquire()
	var calls atomic.Int32
	c := fx.hub.Codec(func(m *Msg) []byte {
		calls.Add(1)
		if m.Seq == 2 {
			return nil // dropped: kept as such
		}
		return []byte(strconv.FormatUint(m.Seq, 10))
	})
	fx.publish(2)
	natstest.WaitFor(t, "seq 2", 10*time.Second, func() bool { return f.Last() == 2 })
	msgs, _, _ := f.Cached(nil, 1, 10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if string(msgs[0].Encoded(c)) != "1" || msgs[1].Encoded(c) != nil {
					t.Error("wrong encoding")
				}
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n < 2 || n > 2*8 {
		t.Fatalf("%d encodings of 2 messages", n)
	}
	before := calls.Load()
	msgs[0].Encoded(c)
	msgs[1].Encoded(c)
	if calls.Load() != before {
		t.Fatal("an encoded message was encoded again")
	}
}

func TestFeedLingersThenStops(t *testing.T) {
	fx := newFixture(t, Config{Linger: 50 * time.Millisecond})
	f, err := fx.hub.Acquire(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
	if fx.hub.Running("s") != f {
		t.Fatal("a released feed stopped before its linger")
	}
	g, err := fx.hub.Acquire(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if g != f {
		t.Fatal("a lingering feed was not taken up again")
	}
	g.Release()
	natstest.WaitFor(t, "the feed to stop", 5*time.Second, func() bool { return fx.hub.Running("s") == nil })
	h, err := fx.hub.Acquire(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if h == f {
		t.Fatal("a stopped feed was handed out")
	}
	fx.publish(1)
	natstest.WaitFor(t, "the new feed's message", 10*time.Second, func() bool { return h.Last() == 1 })
}

func TestChangedClosesAtTheNextMessage(t *testing.T) {
	fx := newFixture(t, Config{})
	f := fx.acquire()
	ch := f.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any message")
	default:
	}
	fx.publish(1)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("not closed by a message")
	}
	if f.Changed() == ch {
		t.Fatal("the same channel after it closed")
	}
}

func TestAcquireFailsWithoutTheLog(t *testing.T) {
	fx := newFixture(t, Config{})
	fx.hub.cfg.Log = func(string) (string, string) { return "LOG_missing", "missing" }
	if _, err := fx.hub.Acquire(context.Background(), "x"); err == nil {
		t.Fatal("a feed of a log that does not exist started")
	}
	if fx.hub.Running("x") != nil {
		t.Fatal("a failed feed is listed as running")
	}
}

func TestHubReadLogWithoutAFeed(t *testing.T) {
	fx := newFixture(t, Config{})
	fx.publish(5)
	msgs, next, err := fx.hub.ReadLog(context.Background(), "s", 2, 4, 100)
	if err != nil || fmt.Sprint(seqs(msgs)) != "[2 3 4]" || next != 5 {
		t.Fatalf("ReadLog(2, 4) = %v, next %d, %v", seqs(msgs), next, err)
	}
	if fx.hub.Running("s") != nil {
		t.Fatal("a read of the log started a feed")
	}
	f := fx.acquire()
	fx.publish(1)
	natstest.WaitFor(t, "seq 6", 10*time.Second, func() bool { return f.Last() == 6 })
	if msgs, next, err = fx.hub.ReadLog(context.Background(), "s", 5, 6, 100); err != nil || fmt.Sprint(seqs(msgs)) != "[5 6]" || next != 7 {
		t.Fatalf("ReadLog(5, 6) with a feed = %v, next %d, %v", seqs(msgs), next, err)
	}
}

// gate is a listener that holds the feed's delivery at seq at until it is opened.
type gate struct {
	at      uint64
	reached chan struct{}
	open    chan struct{}
}

func (g *gate) Appended(m *Msg) {
	if m.Seq == g.at {
		close(g.reached)
		<-g.open
	}
}

// A read up to a seq the caller knows is stored (an append its object acknowledged)
// returns it even while the feed has not delivered it yet: the ring's part, then the
// log's. A read after a write sees the write.
func TestReadRangePastALaggingFeedReadsTheLog(t *testing.T) {
	fx := newFixture(t, Config{})
	f := fx.acquire()
	g := &gate{at: 3, reached: make(chan struct{}), open: make(chan struct{})}
	f.Listen(g)
	defer close(g.open)
	fx.publish(3)
	select {
	case <-g.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the feed did not deliver seq 3")
	}
	fx.publish(2) // seqs 4 and 5: stored, not delivered while the gate holds the feed
	if f.Last() != 3 {
		t.Fatalf("the feed is at %d, want it held at 3", f.Last())
	}
	msgs, next, err := f.ReadRange(context.Background(), 2, 5, 100)
	if err != nil || fmt.Sprint(seqs(msgs)) != "[2 3 4 5]" || next != 6 {
		t.Fatalf("ReadRange(2, 5) = %v, next %d, %v; want [2 3 4 5], next 6", seqs(msgs), next, err)
	}
	if msgs, next, _ = f.ReadRange(context.Background(), 2, 5, 2); fmt.Sprint(seqs(msgs)) != "[2 3]" || next != 4 {
		t.Fatalf("ReadRange(2, 5) of at most 2 = %v, next %d", seqs(msgs), next)
	}
}
