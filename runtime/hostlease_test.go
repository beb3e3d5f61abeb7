package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lastSeq is the last sequence of a KV bucket's stream: every write it took so far.
func lastSeq(t *testing.T, js jetstream.JetStream, bucket string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "KV_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.LastSeq
}

// direct sends a POST for Counter name to host id's own subject, as a gateway with that
// host cached would.
func direct(t *testing.T, nc *nats.Conn, id, name string) *nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := nc.RequestMsgWithContext(ctx, wire.EncodeRequest(wire.HostSubject(id), "Counter", name,
		httptest.NewRequest("POST", "/", nil), nil))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func hostLeaseOf(t *testing.T, h *Host, id string) (wire.HostLease, bool) {
	t.Helper()
	e, err := h.res.Hosts.Get(context.Background(), id)
	if err != nil {
		return wire.HostLease{}, false
	}
	var hl wire.HostLease
	if err := json.Unmarshal(e.Value(), &hl); err != nil {
		t.Fatal(err)
	}
	return hl, true
}

// TestLeaseRenewalCostIsPerHost: with many objects active and idle, the object lease
// bucket takes no writes at all and the host bucket one renewal per TTL/4, whatever the
// number of objects.
func TestLeaseRenewalCostIsPerHost(t *testing.T) {
	s := natstest.Server(t)
	h := startHost(t, s, Options{ID: "a", LeaseTTL: time.Second})
	c := newClient(t, s)
	const n = 200
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := fetch(ctx, c, "Counter", fmt.Sprintf("idle-%d", i), "POST", "/"); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	if h.Active() != n {
		t.Fatalf("%d objects active, want %d", h.Active(), n)
	}
	js, _ := jetstream.New(natstest.Conn(t, s))
	leases0, hosts0 := lastSeq(t, js, wire.LeaseBucket), lastSeq(t, js, wire.HostBucket)
	start := time.Now()
	natstest.WaitFor(t, "2 s of idling", 5*time.Second, func() bool { return time.Since(start) > 2*time.Second })
	leases, hosts := lastSeq(t, js, wire.LeaseBucket)-leases0, lastSeq(t, js, wire.HostBucket)-hosts0
	t.Logf("over %v with %d objects active: %d writes to %s, %d to %s", time.Since(start), n, leases, wire.LeaseBucket, hosts, wire.HostBucket)
	if leases != 0 {
		t.Errorf("%d writes to the object lease bucket while nothing happened, want 0", leases)
	}
	// One renewal per TTL/4: about 8 in 2 s, whatever n is.
	if hosts < 4 || hosts > 12 {
		t.Errorf("%d host lease renewals in 2 s with a 1 s TTL, want about 8", hosts)
	}
	hl, ok := hostLeaseOf(t, h, "a")
	if !ok || hl.Active != n || hl.Epoch == "" || len(hl.Classes) != 2 {
		t.Errorf("host lease announces %+v, want %d active objects, an epoch and 2 classes", hl, n)
	}
}

// TestHostLeaseLapseMovesObjects: when a host's lease lapses (here: its key removed as the
// server does on expiry), every object it held stops there, another host takes them over
// by revision with no TTL to wait for, and the first host comes back under a new epoch
// that owns none of them.
func TestHostLeaseLapseMovesObjects(t *testing.T) {
	s := natstest.Server(t)
	a := startHost(t, s, Options{ID: "a", LeaseTTL: time.Second})
	startHost(t, s, Options{ID: "b", LeaseTTL: time.Second})
	nc := natstest.Conn(t, s)
	names := []string{"m1", "m2", "m3"}
	for _, n := range names {
		for range 2 {
			if m := direct(t, nc, "a", n); wire.Status(m) != 200 {
				t.Fatalf("POST %s on a: %v", n, m.Header)
			}
		}
	}
	before, _ := hostLeaseOf(t, a, "a")
	if err := a.res.Hosts.Purge(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "a to stop its objects", 5*time.Second, func() bool { return a.Active() == 0 })
	natstest.WaitFor(t, "a to take a new epoch", 5*time.Second, func() bool {
		hl, ok := hostLeaseOf(t, a, "a")
		return ok && hl.Epoch != before.Epoch
	})
	for _, n := range names {
		m := direct(t, nc, "b", n)
		var v struct{ Value int64 }
		_ = json.Unmarshal(m.Data, &v)
		if wire.Status(m) != 200 || v.Value != 3 {
			t.Fatalf("POST %s on b after a's lapse: %v %q, want 200 with value 3", n, m.Header, m.Data)
		}
		// a, under its new epoch, owns none of them: it refuses them, and once its stopped
		// instance is gone ("object is moving" until then, also a not-owner answer) it
		// points at b.
		natstest.WaitFor(t, "a to point "+n+" at b", 5*time.Second, func() bool {
			m := direct(t, nc, "a", n)
			if m.Header.Get(wire.HdrError) != wire.ErrNotOwner {
				t.Fatalf("POST %s on a after b took it: %v %q, want not-owner", n, m.Header, m.Data)
			}
			return m.Header.Get(wire.HdrOwner) == "b"
		})
	}
}

// crashHost starts a host on a connection of its own and returns a function that cuts
// the connection without any cleanup, as a crash would.
func crashHost(t *testing.T, s *server.Server, opts Options) (*Host, func()) {
	t.Helper()
	nc := natstest.Conn(t, s)
	if opts.Classes == nil {
		opts.Classes = []objects.Class{counter.Class, probeClass}
	}
	h, err := New(context.Background(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h, func() { h.cancel(); nc.Close() }
}

// TestRestartWithSameIDFreesObjectsAtOnce: a host that crashed and comes back with the
// same id within its lease TTL takes its own lease over under a new epoch; the objects of
// the old epoch are free at once, not after a TTL.
func TestRestartWithSameIDFreesObjectsAtOnce(t *testing.T) {
	s := natstest.Server(t)
	_, crash := crashHost(t, s, Options{ID: "a", LeaseTTL: 10 * time.Second})
	nc := natstest.Conn(t, s)
	if m := direct(t, nc, "a", "r1"); wire.Status(m) != 200 {
		t.Fatalf("POST on a: %v", m.Header)
	}
	crash()
	startHost(t, s, Options{ID: "a", LeaseTTL: 10 * time.Second})
	start := time.Now()
	m := direct(t, nc, "a", "r1")
	if wire.Status(m) != 200 {
		t.Fatalf("POST on the restarted a: %v", m.Header)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the restarted host took %v to own its object again; its lease TTL is 10s", d)
	}
	if v := counterValue(t, newClient(t, s), "r1"); v != 2 {
		t.Fatalf("value %d, want 2", v)
	}
}

// TestStaleEntriesOfDeadHostAreSwept: the entries a crashed host leaves are purged by a
// live host once its lease expires, and an object the live host took over meanwhile keeps
// its entry.
func TestStaleEntriesOfDeadHostAreSwept(t *testing.T) {
	s := natstest.Server(t)
	_, crash := crashHost(t, s, Options{ID: "a", LeaseTTL: time.Second})
	b := startHost(t, s, Options{ID: "b", LeaseTTL: time.Second})
	nc := natstest.Conn(t, s)
	for _, n := range []string{"s1", "s2", "s3"} {
		if m := direct(t, nc, "a", n); wire.Status(m) != 200 {
			t.Fatalf("POST %s on a: %v", n, m.Header)
		}
	}
	crash()
	entries := func() map[string]string {
		es, err := kvwatch.Snapshot(context.Background(), b.res.Leases)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, e := range es {
			var l wire.Lease
			_ = json.Unmarshal(e.Value(), &l)
			m[e.Key()] = l.Host
		}
		return m
	}
	if got := entries(); len(got) != 3 {
		t.Fatalf("entries before the sweep: %v", got)
	}
	// b takes s1 over as soon as a's lease is gone.
	natstest.WaitFor(t, "b to take s1 over", 10*time.Second, func() bool {
		m := direct(t, nc, "b", "s1")
		return wire.Status(m) == 200
	})
	natstest.WaitFor(t, "a's entries to be swept", 10*time.Second, func() bool {
		got := entries()
		return len(got) == 1 && got["Counter.s1"] == "b"
	})
}
