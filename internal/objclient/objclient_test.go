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
