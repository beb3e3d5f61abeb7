package e2e

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
)

// TestFailoverSIGKILL kills the owner of a hot counter under concurrent load and checks
// that another host takes it over within the lease TTL, and that every acknowledged
// increment is counted exactly once.
func TestFailoverSIGKILL(t *testing.T) {
	skipShort(t)
	c := startCluster(t, "host-a", "host-b", "host-c")
	others := []string{"k1", "k2", "k3"}

	var ta tally
	var wg sync.WaitGroup
	driveStop := make(chan struct{})
	hardStop := time.Now().Add(15 * time.Second)
	// drive POSTs name in a loop until driving stops. Requests are not cancelled when it
	// does: each ends with an answer, so the tally knows the fate of every increment.
	drive := func(name string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(hardStop) {
				select {
				case <-driveStop:
					return
				default:
				}
				ta.add(c.do(http.MethodPost, name))
			}
		}()
	}
	start := time.Now()
	for i := range 32 {
		if i%4 == 3 {
			drive(others[i/4%len(others)])
		} else {
			drive("c1")
		}
	}

	// Kill mid-stream, once c1 is busy, so that commits are in flight when the host dies.
	natstest.WaitFor(t, "c1 to take load", 10*time.Second, func() bool {
		return time.Since(start) > 1500*time.Millisecond && ta.ok("c1", start) >= 50
	})
	victim := c.owner("c1")
	if c.hosts[victim] == nil {
		t.Fatalf("c1's lease names host %q, not one of ours", victim)
	}
	killedAt := time.Now()
	c.hosts[victim].signal(t, syscall.SIGKILL)

	// The drivers of c1 are stuck on the dead host until their requests time out, so fresh
	// requests measure the failover, and more drivers load the new owner.
	failover := c.probe("c1", killedAt, 15*time.Second, &ta, &wg)
	t.Logf("c1: owner %s killed; next 200 after %v", victim, failover)
	if failover > leaseTTL+2*time.Second {
		t.Errorf("c1 failed over in %v, want at most lease TTL + 2s = %v", failover, leaseTTL+2*time.Second)
	}
	for range 8 {
		drive("c1")
	}
	natstest.WaitFor(t, "the new owner to serve c1", 10*time.Second, func() bool {
		return ta.ok("c1", killedAt) >= 200
	})
	close(driveStop)
	wg.Wait()
	if now := c.owner("c1"); now == victim || now == "" {
		t.Errorf("c1's lease is held by %q after its owner %s was killed", now, victim)
	}

	for _, name := range append([]string{"c1"}, others...) {
		final := c.get(name)
		ok, unavailable, timeouts := summary(t, ta.of(name), final)
		t.Logf("%s: final value %d; %d answered 200, %d 503, %d 504", name, final, ok, unavailable, timeouts)
		// A 504 says the increment may or may not have landed (its host died after the
		// commit, before the answer); any other answer is definite. So the value is the
		// 200s plus at most the 504s.
		if final < int64(ok) || final > int64(ok+timeouts) {
			t.Errorf("%s: final value %d, want %d answered increments plus at most %d timed-out ones", name, final, ok, timeouts)
		}
		if _, logged := c.logRecords(name); logged != final {
			t.Errorf("%s: the log ends at %d, GET says %d", name, logged, final)
		}
	}
}

// TestFormerOwnerPausedPastLease pauses a counter's owner past its lease, lets the other
// host take over, then resumes the former owner and checks that it cannot write: the
// storage fence and the lease refuse it, and nothing it did reaches the log.
func TestFormerOwnerPausedPastLease(t *testing.T) {
	skipShort(t)
	c := startCluster(t, "host-a", "host-b")
	const name = "c2"
	var ta tally
	post := func() {
		t.Helper()
		r := c.do(http.MethodPost, name)
		ta.add(r)
		if r.status != http.StatusOK {
			t.Fatalf("POST %s: status %d code %q err %v", name, r.status, r.code, r.err)
		}
	}
	// Sequential, so that nothing is in flight when the owner is paused.
	for range 5 {
		post()
	}
	a := c.owner(name)
	b := map[string]string{"host-a": "host-b", "host-b": "host-a"}[a]
	if b == "" {
		t.Fatalf("%s's lease names host %q, not one of ours", name, a)
	}
	stoppedAt := time.Now()
	c.hosts[a].signal(t, syscall.SIGSTOP)

	// Requests reaching the paused host hang there until it resumes; each probe runs on
	// its own so the first one to reach b ends the wait.
	var wg sync.WaitGroup
	failover := c.probe(name, stoppedAt, 15*time.Second, &ta, &wg)
	t.Logf("%s: owner %s paused; %s answered after %v", name, a, b, failover)
	if now := c.owner(name); now != b {
		t.Fatalf("%s's lease is held by %q after it answered, want %s", name, now, b)
	}
	for range 5 {
		post()
	}

	c.hosts[a].signal(t, syscall.SIGCONT)
	wg.Wait() // the probes a held are answered now
	// a finds out on its own: its host lease's next renewal is refused, the lease watch
	// shows it c2 taken over, or its next commit is refused.
	natstest.WaitFor(t, a+" to notice it lost "+name, 10*time.Second, func() bool {
		return c.hosts[a].stderr.hasRecord(lostObject("Counter." + name))
	})

	// Ask a directly, as a gateway with a stale owner cache would: it must refuse.
	before := c.get(name)
	m := wire.EncodeRequest(wire.HostSubject(a), counterClass, name,
		httptest.NewRequest(http.MethodPost, "/counter/"+name, nil), nil)
	reply, err := c.nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatalf("direct request to %s: %v", a, err)
	}
	if code := reply.Header.Get(wire.HdrError); code != wire.ErrNotOwner && code != wire.ErrCommitFailed {
		t.Errorf("direct POST to the former owner %s: status %d, error %q (%s), want %q or %q",
			a, wire.Status(reply), code, reply.Header.Get(wire.HdrMessage), wire.ErrNotOwner, wire.ErrCommitFailed)
	}

	final := c.get(name)
	if final != before {
		t.Errorf("%s went from %d to %d on a request to the former owner", name, before, final)
	}
	ok, unavailable, timeouts := summary(t, ta.of(name), final)
	t.Logf("%s: final value %d; %d answered 200, %d 503, %d 504", name, final, ok, unavailable, timeouts)
	// Nothing was in flight at the pause and a never commits again, so no answer is
	// ambiguous: the value is exactly the 200s.
	if final != int64(ok) {
		t.Errorf("%s: final value %d, want the %d increments answered 200", name, final, ok)
	}
	epochs, logged := c.logRecords(name)
	if logged != final {
		t.Errorf("%s: the log ends at %d, GET says %d", name, logged, final)
	}
	// a activated first and b took over; a's attempt to reactivate never got the lease.
	if !slices.Equal(epochs, []string{a, b}) {
		t.Errorf("%s: epochs in the log %q, want [%s %s]", name, epochs, a, b)
	}
	if now := c.owner(name); now != b {
		t.Errorf("%s's lease is held by %q at the end, want %s", name, now, b)
	}
}
