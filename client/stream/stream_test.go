package stream

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	bstream "github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

func setup(t *testing.T) string {
	t.Helper()
	s := natstest.Server(t)
	h, err := runtime.New(context.Background(), natstest.Conn(t, s), runtime.Options{Classes: []objects.Class{bstream.Class}})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(natstest.Conn(t, s), gateway.Options{Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
		_ = h.Close(ctx)
	})
	deadline := time.Now().Add(10 * time.Second)
	for !gw.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("gateway not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream/"
}

func TestPublishSubscribeReconnect(t *testing.T) {
	base := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan Message, 100)
	sub, err := Dial(ctx, base+"c/1", Options{Client: "w1", Handler: func(m Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := Dial(ctx, base+"c/1", Options{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	want := uint64(1)
	check := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			select {
			case m := <-got:
				if m.Seq != want || m.Stream != "c/1" {
					t.Fatalf("got seq %d on %s, want %d", m.Seq, m.Stream, want)
				}
				var v int
				_ = json.Unmarshal(m.Data, &v)
				if uint64(v) != m.Seq {
					t.Fatalf("data %s for seq %d", m.Data, m.Seq)
				}
				want++
			case <-ctx.Done():
				t.Fatalf("waiting for seq %d", want)
			}
		}
	}
	for i := 1; i <= 10; i++ {
		seq, err := pub.Publish(ctx, i)
		if err != nil || seq != uint64(i) {
			t.Fatalf("publish %d: %d %v", i, seq, err)
		}
	}
	check(10)
	// Drop the subscriber's connection: it comes back and resumes without gap or repeat.
	sub.mu.Lock()
	_ = sub.ws.Close()
	sub.mu.Unlock()
	for i := 11; i <= 15; i++ {
		if _, err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	check(5)
	res, err := sub.Command(ctx, "getStreamInfo", nil)
	for err != nil { // the subscriber may still be reconnecting
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		res, err = sub.Command(ctx, "getStreamInfo", nil)
	}
	if !strings.Contains(string(res), `"lastSeq":15`) {
		t.Fatalf("%s", res)
	}
	// A command error comes back as *Error.
	_, err = sub.Command(ctx, "nope", nil)
	if e, ok := err.(*Error); !ok || e.Code != "unknown_command" {
		t.Fatalf("%v", err)
	}
	select {
	case m := <-got:
		t.Fatalf("extra message %d", m.Seq)
	default:
	}
}

func TestSubscribeMore(t *testing.T) {
	base := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := Dial(ctx, base+"o", Options{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := 0; i < 3; i++ {
		if _, err := other.Publish(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan Message, 10)
	c, err := Dial(ctx, base+"p", Options{Handler: func(m Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "o", 2); err != nil {
		t.Fatal(err)
	}
	for want := uint64(2); want <= 3; want++ {
		select {
		case m := <-got:
			if m.Stream != "o" || m.Seq != want {
				t.Fatalf("%+v", m)
			}
		case <-ctx.Done():
			t.Fatal("timeout")
		}
	}
	if _, err := Dial(ctx, base+"bad name", Options{}); err == nil {
		t.Fatal("a bad name dialled")
	}
}
