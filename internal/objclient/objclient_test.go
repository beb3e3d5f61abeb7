package objclient

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/wire"
)

// newOwners is an Owners fed by hand, with hosts h1..h3 live.
func newOwners() *Owners {
	o := &Owners{m: map[string]string{}, byHost: map[string]map[string]struct{}{}, hosts: map[string]wire.HostLease{}}
	for _, h := range []string{"h1", "h2", "h3"} {
		o.hosts[h] = wire.HostLease{ID: h, Epoch: "e-" + h}
	}
	return o
}

func TestOwnerWatchFiresOnlyOnChange(t *testing.T) {
	o := newOwners()
	o.learn("C.a", "h1")
	ctx, cancel := context.WithCancel(context.Background())
	stop := o.onChange("C.a", "h1", cancel)
	defer stop()
	moved := ctx.Done()
	o.learn("C.a", "h1") // the same owner again
	select {
	case <-moved:
		t.Fatal("fired without a change")
	case <-time.After(10 * time.Millisecond):
	}
	o.learn("C.a", "h2")
	select {
	case <-moved:
	case <-time.After(time.Second):
		t.Fatal("did not fire when the owner changed")
	}
	o.learn("C.a", "h3") // firing twice must not panic
	stop()
	if len(o.watchers) != 0 {
		t.Fatalf("watch not forgotten: %v", o.watchers)
	}
}

// TestOwnerWatchKeepsRequestsOnRelease: a lease handed back leaves its owner alive to
// answer, so requests to it are not given up; the expiry of its host lease gives them up.
func TestOwnerWatchKeepsRequestsOnRelease(t *testing.T) {
	o := newOwners()
	o.learn("C.a", "h1")
	ctx, cancel := context.WithCancel(context.Background())
	stop := o.onChange("C.a", "h1", cancel)
	defer stop()
	o.mu.Lock()
	o.record("C.a", "", false) // handed back
	o.mu.Unlock()
	if ctx.Err() != nil {
		t.Fatal("gave up on a request to an owner that handed its lease back")
	}
	if got := o.Lookup("C.a"); got != "" {
		t.Fatalf("owner after the release: %q", got)
	}
	o.mu.Lock()
	o.dropHost("h1", true) // h1's host lease expired
	o.mu.Unlock()
	if ctx.Err() == nil {
		t.Fatal("kept waiting on an owner whose host lease expired")
	}
}

// TestHostLapseForgetsItsObjects: every object of a host whose lease expires is forgotten
// and every request in flight to it given up, those to other hosts are not; a host that
// stopped cleanly (its lease deleted) is forgotten without giving anything up.
func TestHostLapseForgetsItsObjects(t *testing.T) {
	o := newOwners()
	for _, k := range []string{"C.a", "C.b", "D.c"} {
		o.learn(k, "h1")
	}
	o.learn("C.z", "h2")
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer o.onChange("C.b", "h1", cancel1)()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer o.onChange("C.z", "h2", cancel2)()

	o.mu.Lock()
	o.dropHost("h1", true)
	o.mu.Unlock()
	for _, k := range []string{"C.a", "C.b", "D.c"} {
		if got := o.Lookup(k); got != "" {
			t.Errorf("%s still owned by %q after h1's lease expired", k, got)
		}
	}
	if ctx1.Err() == nil {
		t.Error("a request in flight to h1 was not given up")
	}
	if ctx2.Err() != nil || o.Lookup("C.z") != "h2" {
		t.Error("h1's expiry touched h2's object")
	}
	// A reply from h1 that crossed the news of its expiry does not bring it back.
	o.learn("C.a", "h1")
	if got := o.Lookup("C.a"); got != "" {
		t.Errorf("a dead host was learned as owner: %q", got)
	}

	o.mu.Lock()
	o.dropHost("h2", false)
	o.mu.Unlock()
	if o.Lookup("C.z") != "" || ctx2.Err() != nil {
		t.Error("a clean stop of h2: want its object forgotten and its request kept")
	}
}
