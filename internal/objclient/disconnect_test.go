package objclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// TestRequestInFlightWhenTheConnectionDrops: nats.go gives up a request in flight when
// the connection drops; the host may have run it, so the answer is ErrTimeout ("may or
// may not"), not an error the gateway would report as "never ran" (503).
func TestRequestInFlightWhenTheConnectionDrops(t *testing.T) {
	s := natstest.Server(t)
	host := natstest.Conn(t, s)
	got := make(chan struct{}, 1)
	// A host that takes the request and never answers.
	if _, err := host.Subscribe(wire.ActivateSubject("C"), func(*nats.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := host.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Conn(t, s)
	c := New(nc, nil)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.Request(ctx, "C", "a", nats.NewMsg(""))
		errc <- err
	}()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the host")
	}
	dropped := time.Now()
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, nats.ErrDisconnected) {
			t.Errorf("got %v, want ErrTimeout wrapping nats.ErrDisconnected", err)
		}
		if d := time.Since(dropped); d > 5*time.Second {
			t.Errorf("given up %v after the drop", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request was still waiting 20 s after its connection dropped")
	}
}
