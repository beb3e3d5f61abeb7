package objclient

import (
	"context"
	"testing"
	"time"
)

func TestOwnerWatchFiresOnlyOnChange(t *testing.T) {
	o := &Owners{m: map[string]string{}}
	o.learn("C.a", "h1")
	ctx, cancel := context.WithCancel(context.Background())
	stop := o.onChange("C.a", "h1", cancel)
	defer stop()
	moved := ctx.Done()
	o.learn("C.a", "h1") // a renewal: same owner
	select {
	case <-moved:
		t.Fatal("fired on a renewal")
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

// TestOwnerWatchKeepsRequestsOnRelease: a lease handed back (a KV delete) leaves its owner
// alive to answer, so requests to it are not given up; an expiry still gives them up.
func TestOwnerWatchKeepsRequestsOnRelease(t *testing.T) {
	o := &Owners{m: map[string]string{}}
	o.learn("C.a", "h1")
	ctx, cancel := context.WithCancel(context.Background())
	stop := o.onChange("C.a", "h1", cancel)
	defer stop()
	o.mu.Lock()
	o.record("C.a", "", false) // released
	o.mu.Unlock()
	if ctx.Err() != nil {
		t.Fatal("gave up on a request to an owner that handed its lease back")
	}
	if got := o.Lookup("C.a"); got != "" {
		t.Fatalf("owner after the release: %q", got)
	}
	o.mu.Lock()
	o.record("C.a", "", true) // expired
	o.mu.Unlock()
	if ctx.Err() == nil {
		t.Fatal("kept waiting on an owner whose lease expired")
	}
}
