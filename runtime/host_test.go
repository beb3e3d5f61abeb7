package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func startHost(t testing.TB, s *server.Server, opts Options) *Host {
	t.Helper()
	if opts.Classes == nil {
		opts.Classes = []objects.Class{counter.Class, probeClass}
	}
	h, err := New(context.Background(), natstest.Conn(t, s), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Close(ctx)
	})
	return h
}

func newClient(t testing.TB, s *server.Server) *objclient.Client {
	nc := natstest.Conn(t, s)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	res, err := cluster.Bind(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := objclient.WatchOwners(ctx, objclient.WatchConfig{Leases: res.Leases, Hosts: res.Hosts})
	if err != nil {
		t.Fatal(err)
	}
	return objclient.New(nc, owners)
}

func fetch(ctx context.Context, c *objclient.Client, class, name, method, path string) (*nats.Msg, error) {
	r := httptest.NewRequest(method, path, nil)
	return c.Request(ctx, class, name, wire.EncodeRequest("", class, name, r, nil))
}

func counterValue(t *testing.T, c *objclient.Client, name string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := fetch(ctx, c, "Counter", name, "GET", "/")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Value int64 }
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("%v: %q", err, m.Data)
	}
	return v.Value
}

func TestCounterConcurrentIncrements(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, Options{})
	c := newClient(t, s)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				m, err := fetch(ctx, c, "Counter", "hot", "POST", "/")
				cancel()
				if err == nil && wire.Status(m) == 200 {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 800 {
		t.Fatalf("%d of 800 increments succeeded", ok.Load())
	}
	if v := counterValue(t, c, "hot"); v != 800 {
		t.Fatalf("value %d, want 800", v)
	}
}

func TestStateSurvivesHostRestartAndHandsOver(t *testing.T) {
	s := natstest.Server(t)
	a := startHost(t, s, Options{ID: "a"})
	c := newClient(t, s)
	for i := 0; i < 300; i++ { // crosses several snapshots and purges
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := fetch(ctx, c, "Counter", "x/y", "POST", "/"); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	startHost(t, s, Options{ID: "b"})
	// The lease was handed back: host b answers at once, without waiting for a TTL.
	start := time.Now()
	if v := counterValue(t, c, "x/y"); v != 300 {
		t.Fatalf("value %d, want 300", v)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("handover took %v", d)
	}
}

// TestOwnersLeaveNoKeys: the epoch record each owner writes is not part of the object's
// storage, after any number of hand-overs.
func TestOwnersLeaveNoKeys(t *testing.T) {
	s := natstest.Server(t)
	var c *objclient.Client
	for i, id := range []string{"a", "b", "c"} {
		h := startHost(t, s, Options{ID: id})
		if i == 0 {
			c = newClient(t, s)
			if got := probeGet(t, c, "owners", "/put?v=1"); got != "200 1|" {
				t.Fatalf("put: %s", got)
			}
		}
		if got := probeGet(t, c, "owners", "/keys"); got != "200 k" {
			t.Fatalf("keys on host %s: %s, want only k", id, got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := h.Close(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestFenceRefusesFormerOwner shows that JetStream itself, not the host's clock, refuses
// a former owner's write once a new owner has taken the object.
func TestFenceRefusesFormerOwner(t *testing.T) {
	s := natstest.Server(t)
	a := startHost(t, s, Options{ID: "a", LeaseTTL: 60 * time.Second})
	a.skipLocalChecks = true
	b := startHost(t, s, Options{ID: "b", LeaseTTL: 60 * time.Second})
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	direct := func(h *Host) (*nats.Msg, error) {
		r := httptest.NewRequest("POST", "/", nil)
		return natstest.Conn(t, s).RequestMsgWithContext(ctx, wire.EncodeRequest(wire.HostSubject(h.ID()), "Counter", "z", r, nil))
	}
	if m, err := direct(a); err != nil || wire.Status(m) != 200 {
		t.Fatalf("first increment on a: %v %v", err, m.Header)
	}
	// Steal the lease as if a's had expired while it was paused.
	if err := a.res.Leases.Purge(ctx, "Counter.z"); err != nil {
		t.Fatal(err)
	}
	if m, err := direct(b); err != nil || wire.Status(m) != 200 {
		t.Fatalf("increment on b: %v %v", err, m.Header)
	}
	// a still believes it owns z; its write must be refused by the log's fence.
	m, err := direct(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(wire.HdrError); got != wire.ErrCommitFailed {
		t.Fatalf("former owner's write: error %q status %d, want %q", got, wire.Status(m), wire.ErrCommitFailed)
	}
	natstest.WaitFor(t, "a to drop the object", 5*time.Second, func() bool { return a.Active() == 0 })
	if v := counterValue(t, c, "z"); v != 2 {
		t.Fatalf("value %d, want 2 (a's late write must not count)", v)
	}
}

// probe is a test class exercising rollback, alarms and eviction.
type probe struct{ st objects.State }

var probeClass = objects.Class{Name: "Probe", New: func(st objects.State) objects.Object { return &probe{st} }}

func (p *probe) Fetch(w http.ResponseWriter, r *http.Request) {
	s := p.st.Storage()
	switch r.URL.Path {
	case "/panic":
		_ = s.Put("k", []byte("written before panic"))
		panic("boom")
	case "/alarm":
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		_ = p.st.Alarm().Set(time.Now().Add(time.Duration(ms) * time.Millisecond))
	case "/many":
		// 12 values of 100 KiB: each fits, together they pass the 1 MiB per-event limit.
		for i := 0; i < 12; i++ {
			if err := s.Put("many"+strconv.Itoa(i), make([]byte, 100<<10)); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
	case "/call":
		ns := p.st.Namespace("COUNTERS")
		if ns == nil {
			http.Error(w, "no binding", 500)
			return
		}
		stub, _ := ns.Get(r.URL.Query().Get("target"))
		resp, err := stub.Fetch(r.Context(), httptest.NewRequest("POST", "/", nil))
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, _ = w.Write(b)
		return
	case "/self":
		stub, _ := p.st.Namespace("PROBES").Get(p.st.Name())
		if _, err := stub.Fetch(r.Context(), httptest.NewRequest("GET", "/", nil)); errors.Is(err, objects.ErrSelfCall) {
			_, _ = w.Write([]byte("refused"))
		}
		return
	case "/put":
		_ = s.Put("k", []byte(r.URL.Query().Get("v")))
	case "/keys":
		var keys []string
		for _, e := range s.List("", "", 0) {
			keys = append(keys, e.Key)
		}
		_, _ = w.Write([]byte(strings.Join(keys, ",")))
		return
	case "/big":
		if err := s.Put("k", make([]byte, 1<<20)); !errors.Is(err, objects.ErrValueTooLarge) {
			http.Error(w, "no limit", 500)
			return
		}
	}
	v, _ := s.Get("k")
	f, _ := s.Get("fired")
	_, _ = w.Write([]byte(string(v) + "|" + string(f)))
}

func (p *probe) Alarm(ctx context.Context, info objects.AlarmInfo) error {
	n := 0
	if v, ok := p.st.Storage().Get("fired"); ok {
		n, _ = strconv.Atoi(string(v))
	}
	if err := p.st.Storage().Put("fired", []byte(strconv.Itoa(n+1))); err != nil {
		return err
	}
	if info.RetryCount == 0 && p.st.Name() == "flaky" {
		return errors.New("first attempt fails")
	}
	return nil
}

func probeGet(t *testing.T, c *objclient.Client, name, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := fetch(ctx, c, "Probe", name, "GET", path)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(wire.Status(m)) + " " + string(m.Data)
}

func TestPanicUndoesWrites(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, Options{})
	c := newClient(t, s)
	probeGet(t, c, "p", "/put?v=kept")
	if got := probeGet(t, c, "p", "/panic"); got[:3] != "500" {
		t.Fatalf("panic answered %q", got)
	}
	if got := probeGet(t, c, "p", "/"); got != "200 kept|" {
		t.Fatalf("after panic: %q", got)
	}
	if got := probeGet(t, c, "p", "/big"); got != "200 kept|" {
		t.Fatalf("value limit: %q", got)
	}
	if got := probeGet(t, c, "p", "/many"); !strings.HasPrefix(got, "500 ") || !strings.Contains(got, "nothing was written") {
		t.Fatalf("event limit: %q", got)
	}
	if got := probeGet(t, c, "p", "/"); got != "200 kept|" {
		t.Fatalf("after an oversized event: %q", got)
	}
}

func TestAlarmFiresAfterEvictionAndRetries(t *testing.T) {
	s := natstest.Server(t)
	h := startHost(t, s, Options{IdleTimeout: 50 * time.Millisecond})
	c := newClient(t, s)
	probeGet(t, c, "sleepy", "/alarm?ms=400")
	probeGet(t, c, "flaky", "/alarm?ms=10")
	// Both are evicted long before the alarms fire; the scheduler must wake them. The hint
	// disappears only once the handler succeeded and committed, so nothing polls the object
	// (which would activate it) until then.
	natstest.WaitFor(t, "eviction", 5*time.Second, func() bool { return h.Active() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range []string{"sleepy", "flaky"} {
		natstest.WaitFor(t, name+"'s alarm to fire", 15*time.Second, func() bool {
			_, err := h.res.Alarms.Get(ctx, "Probe."+name)
			return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
		})
	}
	if got := probeGet(t, c, "sleepy", "/"); got != "200 |1" {
		t.Fatalf("sleepy: %q", got)
	}
	// flaky failed its first attempt, whose write was undone, then succeeded once.
	if got := probeGet(t, c, "flaky", "/"); got != "200 |1" {
		t.Fatalf("flaky: %q", got)
	}
}

// TestOneOwnerAcrossHosts races first requests for many names across three hosts: exactly
// one host wins each name, and every increment is counted once.
func TestOneOwnerAcrossHosts(t *testing.T) {
	s := natstest.Server(t)
	hosts := []*Host{startHost(t, s, Options{ID: "h1"}), startHost(t, s, Options{ID: "h2"}), startHost(t, s, Options{ID: "h3"})}
	c := newClient(t, s)
	const names, per = 20, 10
	var wg sync.WaitGroup
	var ok atomic.Int64
	for n := 0; n < names; n++ {
		for g := 0; g < per; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if m, err := fetch(ctx, c, "Counter", "n"+strconv.Itoa(n), "POST", "/"); err == nil && wire.Status(m) == 200 {
					ok.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if ok.Load() != names*per {
		t.Fatalf("%d of %d increments succeeded", ok.Load(), names*per)
	}
	total := 0
	for _, h := range hosts {
		total += h.Active()
	}
	if total != names {
		t.Fatalf("%d active instances across hosts for %d names", total, names)
	}
	for n := 0; n < names; n++ {
		if v := counterValue(t, c, "n"+strconv.Itoa(n)); v != per {
			t.Fatalf("n%d = %d, want %d", n, v, per)
		}
	}
}

func TestObjectsCallObjects(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, Options{Namespaces: map[string]string{"COUNTERS": "Counter", "PROBES": "Probe"}})
	c := newClient(t, s)
	if got := probeGet(t, c, "caller", "/call?target=callee"); got != "200 {\"name\":\"callee\",\"value\":1}\n" {
		t.Fatalf("call: %q", got)
	}
	if got := probeGet(t, c, "caller", "/self"); got != "200 refused" {
		t.Fatalf("self call: %q", got)
	}
}
