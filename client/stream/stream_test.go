package stream

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	bstream "github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

func setup(t *testing.T) string {
	t.Helper()
	s := natstest.Server(t)
	hosttest.Start(t, natstest.Conn(t, s), runtime.Options{Classes: []objects.Class{bstream.Class}})
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
	})
	natstest.WaitFor(t, "the gateway to be ready", 10*time.Second, gw.Ready)
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

// TestGroup: two members of a group share the stream's messages, each going to one
// member; a message a member holds past the redelivery timeout goes to the other; a
// member that reconnects stays in the group.
func TestGroup(t *testing.T) {
	base := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Dial(ctx, base+"g", Options{Group: "w", From: 3}); err == nil {
		t.Fatal("a group with From dialled")
	}
	type got struct {
		member string
		seq    uint64
	}
	msgs := make(chan got, 100)
	hold := make(chan struct{}) // a's handler holds its first message until this closes
	var held uint64
	a, err := Dial(ctx, base+"g", Options{Group: "w", Client: "a", Window: 1, Redelivery: 200 * time.Millisecond,
		Handler: func(m Message) {
			if held == 0 {
				held = m.Seq
				msgs <- got{"a", m.Seq}
				<-hold
				return
			}
			msgs <- got{"a", m.Seq}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pub, err := Dial(ctx, base+"g", Options{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := 1; i <= 10; i++ {
		if _, err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	first := <-msgs // a holds it
	b, err := Dial(ctx, base+"g", Options{Group: "w", Client: "b", Redelivery: 200 * time.Millisecond,
		Handler: func(m Message) { msgs <- got{"b", m.Seq} }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// b gets everything, a's held message included once its claim expired.
	seen := map[uint64][]string{first.seq: {first.member}}
	for done := false; !done; {
		select {
		case g := <-msgs:
			seen[g.seq] = append(seen[g.seq], g.member)
		case <-ctx.Done():
			t.Fatalf("timeout; got %v", seen)
		}
		done = len(seen) == 10 && len(seen[first.seq]) == 2
	}
	close(hold)
	for seq := uint64(1); seq <= 10; seq++ {
		want := []string{"b"}
		if seq == first.seq {
			want = []string{"a", "b"}
		}
		if !slices.Equal(seen[seq], want) {
			t.Errorf("seq %d went to %v, want %v", seq, seen[seq], want)
		}
	}
	// a, reconnected, is still a member: with b gone it takes every new message.
	b.Close()
	a.mu.Lock()
	_ = a.ws.Close()
	a.mu.Unlock()
	for i := 11; i <= 20; i++ {
		if _, err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for want := map[uint64]bool{}; len(want) < 10; {
		select {
		case g := <-msgs:
			if g.seq > 10 {
				if g.member != "a" {
					t.Fatalf("seq %d went to %s after it closed", g.seq, g.member)
				}
				want[g.seq] = true
			}
		case <-ctx.Done():
			t.Fatal("timeout waiting for a")
		}
	}
}
