package runtime

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// logProbe exercises an object's log through plain requests.
type logProbe struct{ st objects.State }

var logProbeClass = objects.Class{Name: "LogProbe", New: func(st objects.State) objects.Object { return &logProbe{st} }}

func (p *logProbe) Fetch(w http.ResponseWriter, r *http.Request) {
	l := p.st.Log()
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	switch r.URL.Path {
	case "/append":
		var seqs []string
		for i := 0; i < n; i++ {
			seq, err := l.Append([]byte(fmt.Sprintf("m%d", i)), map[string]string{"K": "v"})
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			seqs = append(seqs, strconv.FormatUint(seq, 10))
		}
		fmt.Fprint(w, strings.Join(seqs, ","))
		return
	case "/append-panic":
		_, _ = l.Append([]byte("lost"), nil)
		panic("after append")
	case "/trim":
		_ = l.Trim(uint64(n))
	case "/limit":
		_ = l.Configure(objects.LogConfig{MaxMsgs: int64(n)})
	case "/read":
		msgs, err := l.Read(r.Context(), uint64(n), 100)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for _, m := range msgs {
			fmt.Fprintf(w, "%d:%s:%s ", m.Seq, m.Data, m.Headers["K"])
		}
		return
	}
	info := l.Info()
	fmt.Fprintf(w, "%d-%d", info.FirstSeq, info.LastSeq)
}

func logGet(t *testing.T, c interface {
	Request(context.Context, string, string, *nats.Msg) (*nats.Msg, error)
}, name, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, _ := http.NewRequest("GET", "http://x"+path, nil)
	m, err := c.Request(ctx, "LogProbe", name, wire.EncodeRequest("", "LogProbe", name, r, nil))
	if err != nil {
		t.Fatal(err)
	}
	if e := m.Header.Get(wire.HdrError); e != "" {
		return "error " + e
	}
	return strconv.Itoa(wire.Status(m)) + " " + strings.TrimSpace(string(m.Data))
}

func TestLogSequencesTrimAndRetention(t *testing.T) {
	s := natstest.Server(t)
	h := startHost(t, s, Options{Classes: []objects.Class{logProbeClass}, ID: "a"})
	c := newClient(t, s)
	steps := []struct{ path, want string }{
		{"/", "200 1-0"},
		{"/append?n=3", "200 1,2,3"},
		{"/append-panic", ""}, // 500: its append is undone, its seq not used
		{"/append?n=2", "200 4,5"},
		{"/read?n=2", "200 2:m1:v 3:m2:v 4:m0:v 5:m1:v"},
		{"/trim?n=2", "200 3-5"},
		{"/read?n=1", "200 3:m2:v 4:m0:v 5:m1:v"},
		{"/limit?n=2", "200 3-5"},
		{"/append?n=1", "200 6"},
		{"/read?n=1", "200 5:m1:v 6:m0:v"},
	}
	for _, st := range steps {
		got := logGet(t, c, "l1", st.path)
		if st.want == "" {
			if !strings.HasPrefix(got, "500") {
				t.Fatalf("%s: %q, want a 500", st.path, got)
			}
			continue
		}
		if got != st.want {
			t.Fatalf("%s: %q, want %q", st.path, got, st.want)
		}
	}
	// Another host picks the log up where it was.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	startHost(t, s, Options{Classes: []objects.Class{logProbeClass}, ID: "b"})
	if got := logGet(t, c, "l1", "/append?n=1"); got != "200 7" {
		t.Fatalf("after move: %q", got)
	}
}

// TestLogFenceRefusesFormerOwner: a former owner's append is refused by JetStream itself.
func TestLogFenceRefusesFormerOwner(t *testing.T) {
	s := natstest.Server(t)
	classes := []objects.Class{logProbeClass}
	a := startHost(t, s, Options{Classes: classes, ID: "a", LeaseTTL: 60 * time.Second})
	a.skipLocalChecks = true
	b := startHost(t, s, Options{Classes: classes, ID: "b", LeaseTTL: 60 * time.Second})
	nc := natstest.Conn(t, s)
	direct := func(h *Host, path string) *nats.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, _ := http.NewRequest("GET", "http://x"+path, nil)
		m, err := nc.RequestMsgWithContext(ctx, wire.EncodeRequest(wire.HostSubject(h.ID()), "LogProbe", "f", r, nil))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := direct(a, "/append?n=2"); string(m.Data) != "1,2" {
		t.Fatalf("a: %q %v", m.Data, m.Header)
	}
	if err := a.res.Leases.Purge(context.Background(), "LogProbe.f"); err != nil {
		t.Fatal(err)
	}
	if m := direct(b, "/append?n=1"); string(m.Data) != "3" {
		t.Fatalf("b: %q %v", m.Data, m.Header)
	}
	// a's object still thinks the next seq is 3. Its storage record would be refused too;
	// with no storage write, only the log's own fence stands in the way.
	m := direct(a, "/append?n=1")
	if m.Header.Get(wire.HdrError) != wire.ErrCommitFailed {
		t.Fatalf("former owner's append: %q %v", m.Data, m.Header)
	}
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), wire.LogStream("LogProbe", "f"))
	if err != nil {
		t.Fatal(err)
	}
	if last := st.CachedInfo().State.LastSeq; last != 3 {
		t.Fatalf("log holds %d messages, want 3", last)
	}
}

// TestLogAppendAgainFindsItsEarlierTry: an append published again after its first try went
// unanswered (a stream electing a leader) is refused as out of sequence when the first try
// did land; appendAgain then finds its own bytes at its seq and reports it stored, once.
// Another message at that seq is still the fence's refusal.
func TestLogAppendAgainFindsItsEarlierTry(t *testing.T) {
	s := natstest.Server(t)
	h := startHost(t, s, Options{Classes: []objects.Class{logProbeClass}, ID: "a"})
	c := newClient(t, s)
	if got := logGet(t, c, "l1", "/append?n=3"); got != "200 1,2,3" {
		t.Fatalf("append: %q", got)
	}
	insts := h.instances()
	if len(insts) != 1 {
		t.Fatalf("%d active objects, want 1", len(insts))
	}
	in := insts[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	again := func(data string, seq uint64) error {
		m := nats.NewMsg(in.log.subject)
		m.Data = []byte(data)
		return in.appendAgain(ctx, m, seq)
	}
	if err := again("m2", 3); err != nil {
		t.Fatalf("the retry of a landed append: %v", err)
	}
	if err := again("not m2", 3); err == nil || !isFenced(err) {
		t.Fatalf("another message at a stored seq: %v, want the fence's refusal", err)
	}
	info, err := in.log.handle.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 || info.State.LastSeq != 3 {
		t.Fatalf("the log holds %d messages up to %d, want 3 up to 3", info.State.Msgs, info.State.LastSeq)
	}
}
