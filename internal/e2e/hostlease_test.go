package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/status"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// directPost sends an increment of counter name straight to host id's subject, as a
// gateway whose cache names that host would, and returns the reply.
func (c *cluster) directPost(id, name string, timeout time.Duration) (*nats.Msg, error) {
	m := wire.EncodeRequest(wire.HostSubject(id), counterClass, name,
		httptest.NewRequest(http.MethodPost, "/counter/"+name, nil), nil)
	return c.nc.RequestMsg(m, timeout)
}

// hostLease reads host id's lease from the host bucket, or false when it has none.
func (c *cluster) hostLease(id string) (wire.HostLease, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := status.Read(ctx, c.js)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range r.Hosts {
		if h.ID == id {
			return h, true
		}
	}
	return wire.HostLease{}, false
}

// TestHostPausedPastItsLease pauses a host holding many objects past its host lease, while
// requests sent straight to it (a gateway's stale cache) pile up in its socket. Every object
// moves to the other host; after SIGCONT the paused host lands none of the piled-up writes,
// and comes back under a new epoch owning none of the moved objects.
func TestHostPausedPastItsLease(t *testing.T) {
	skipShort(t)
	c := startCluster(t, "host-a", "host-b")
	const objects, before = 12, 3
	names := make([]string, objects)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
		for range before {
			m, err := c.directPost("host-a", names[i], 10*time.Second)
			if err != nil || wire.Status(m) != http.StatusOK {
				t.Fatalf("POST %s on host-a: %v %v", names[i], err, m)
			}
		}
		if o := c.owner(names[i]); o != "host-a" {
			t.Fatalf("%s is owned by %q, want host-a", names[i], o)
		}
	}
	var epoch wire.HostLease
	natstest.WaitFor(t, fmt.Sprintf("host-a to announce %d active objects", objects), 5*time.Second, func() bool {
		var ok bool
		epoch, ok = c.hostLease("host-a")
		return ok && epoch.Active == objects
	})

	c.hosts["host-a"].signal(t, syscall.SIGSTOP)
	stoppedAt := time.Now()
	// Late writes: sent to the paused host, delivered to it when it resumes.
	type late struct {
		name string
		m    *nats.Msg
		err  error
	}
	lates := make(chan late, objects)
	for _, n := range names {
		go func() {
			m, err := c.directPost("host-a", n, 30*time.Second)
			lates <- late{n, m, err}
		}()
	}
	// Through the gateway, every object moves to host-b once host-a's lease expires.
	var ta tally
	var wg sync.WaitGroup
	for _, n := range names {
		d := c.probe(n, stoppedAt, 15*time.Second, &ta, &wg)
		if d < leaseTTL/2 {
			t.Errorf("%s answered %v after the pause, before host-a's lease could expire", n, d)
		}
		if o := c.owner(n); o != "host-b" {
			t.Fatalf("%s is owned by %q after it answered, want host-b", n, o)
		}
	}
	t.Logf("all %d objects moved to host-b within %v of the pause", objects, time.Since(stoppedAt))

	c.hosts["host-a"].signal(t, syscall.SIGCONT)
	for range names {
		l := <-lates
		if l.err != nil {
			t.Errorf("late write to %s: %v (want an answer from the resumed host)", l.name, l.err)
			continue
		}
		code := l.m.Header.Get(wire.HdrError)
		if wire.Status(l.m) == http.StatusOK || (code != wire.ErrNotOwner && code != wire.ErrCommitFailed) {
			t.Errorf("late write to %s on the resumed host-a: status %d error %q (%s), want not-owner or commit-failed",
				l.name, wire.Status(l.m), code, l.m.Header.Get(wire.HdrMessage))
		}
	}
	wg.Wait()
	natstest.WaitFor(t, "host-a to come back under a new epoch", 10*time.Second, func() bool {
		hl, ok := c.hostLease("host-a")
		return ok && hl.Epoch != epoch.Epoch
	})
	if !c.hosts["host-a"].stderr.hasRecord(func(r logRecord) bool { return r.Msg == "host lease lost; its objects stop and move" }) {
		t.Error("host-a did not log that its host lease was lost")
	}
	for _, n := range names {
		// A request to the resumed host, as a stale cache would send: it points at host-b.
		m, err := c.directPost("host-a", n, 10*time.Second)
		if err != nil || m.Header.Get(wire.HdrError) != wire.ErrNotOwner || m.Header.Get(wire.HdrOwner) != "host-b" {
			t.Errorf("POST %s on host-a after it resumed: %v %v, want not-owner pointing at host-b", n, err, m)
		}
		final := c.get(n)
		ok, _, timeouts := summary(t, ta.of(n), final)
		// Requests in flight to host-a at its pause got 504 and never ran: host-a commits
		// nothing after the pause. So the value is exactly the writes before plus the 200s.
		if final != int64(before+ok) {
			t.Errorf("%s: final value %d, want %d before the pause + %d answered 200 (%d timed out)", n, final, before, ok, timeouts)
		}
		epochs, logged := c.logRecords(n)
		if logged != final {
			t.Errorf("%s: the log ends at %d, GET says %d", n, logged, final)
		}
		if !slices.Equal(epochs, []string{"host-a", "host-b"}) {
			t.Errorf("%s: epochs in the log %q, want [host-a host-b]", n, epochs)
		}
	}
}

// drainTOML is the counter config with a lease TTL long enough that a handover waiting
// for it could not be mistaken for an immediate one.
var drainTOML = strings.Replace(configTOML, `lease_ttl = "2s"`, `lease_ttl = "10s"`, 1)

// TestHostSIGTERMHandsObjectsBackAtOnce: a host stopped with SIGTERM hands its objects
// back before it exits, so the next request activates each elsewhere at once, far sooner
// than the 10 s lease TTL, with every increment counted once.
func TestHostSIGTERMHandsObjectsBackAtOnce(t *testing.T) {
	skipShort(t)
	c := startClusterWith(t, drainTOML, "host-a", "host-b")
	names := []string{"d1", "d2", "d3", "d4"}
	for _, n := range names {
		for range 2 {
			m, err := c.directPost("host-a", n, 10*time.Second)
			if err != nil || wire.Status(m) != http.StatusOK {
				t.Fatalf("POST %s on host-a: %v %v", n, err, m)
			}
		}
	}
	// Load through the gateway while host-a stops: each request is answered, by host-a
	// before it stops or by host-b after; none waits out a TTL.
	var ta tally
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ta.add(c.do(http.MethodPost, n))
			}
		}()
	}
	natstest.WaitFor(t, "load to start", 10*time.Second, func() bool { return ta.ok(names[0], time.Time{}) > 5 })
	c.hosts["host-a"].signal(t, syscall.SIGTERM)
	termAt := time.Now()
	select {
	case <-c.hosts["host-a"].done:
	case <-time.After(15 * time.Second):
		t.Fatal("host-a did not exit within 15 s of SIGTERM")
	}
	exited := time.Since(termAt)
	var slowest time.Duration
	for _, n := range names {
		natstest.WaitFor(t, n+" to answer on host-b", 5*time.Second, func() bool { return c.owner(n) == "host-b" && ta.ok(n, termAt) > 0 })
		// The longest any request took around the stop.
		for _, r := range ta.of(n) {
			if r.end.After(termAt) {
				slowest = max(slowest, r.end.Sub(r.start))
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("host-a exited %v after SIGTERM; the slowest request around it took %v", exited, slowest)
	if slowest > 3*time.Second {
		t.Errorf("a request took %v around host-a's SIGTERM: the objects were not handed back (lease TTL 10 s)", slowest)
	}
	if _, ok := c.hostLease("host-a"); ok {
		t.Error("host-a's host lease is still live after it exited")
	}
	for _, n := range names {
		final := c.get(n)
		ok, unavailable, timeouts := summary(t, ta.of(n), final)
		if unavailable+timeouts > 0 || final != int64(2+ok) {
			t.Errorf("%s: final %d with %d 200s, %d 503s, %d 504s: want every request answered 200 and counted once", n, final, ok, unavailable, timeouts)
		}
	}
}
