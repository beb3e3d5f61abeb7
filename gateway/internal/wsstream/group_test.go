package wsstream_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
)

// groupInfo asks the stream object for a group's state.
func groupInfo(t *testing.T, f *gwtest.Fixture, stream, group string) (next uint64, inflight int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := f.StreamClient(t).GroupInfo(ctx, stream, group)
	if err != nil {
		t.Fatal(err)
	}
	return out.Next, out.Inflight
}

func TestStreamGroupSharesWithoutOverlap(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	a := gwtest.JoinGroup(t, f, "/v1/stream/jobs?group=w&client=a&window=4", false)
	b := gwtest.JoinGroup(t, f, "/v1/stream/jobs?group=w&client=b&window=4", false)
	pub := gwtest.DialStream(t, f, "/v1/stream/jobs?from=latest")
	pub.Publish("j", 8)
	// Nothing acked: each member holds its window of 4, and they are disjoint.
	seen := map[uint64]bool{}
	for _, m := range []*gwtest.Member{a, b} {
		for _, s := range m.Take(t, 4) {
			if seen[s] {
				t.Fatalf("seq %d delivered twice", s)
			}
			seen[s] = true
			m.Ack(t, s)
		}
	}
	// Acked, more flow; every seq once over both members.
	pub.Publish("k", 32)
	deadline := time.After(20 * time.Second)
	for len(seen) < 40 {
		var s uint64
		var m *gwtest.Member
		select {
		case s = <-a.Msgs:
			m = a
		case s = <-b.Msgs:
			m = b
		case <-deadline:
			t.Fatalf("got %d of 40", len(seen))
		}
		if s == 0 || seen[s] {
			t.Fatalf("seq %d delivered twice (or a member closed)", s)
		}
		seen[s] = true
		m.Ack(t, s)
	}
	for _, q := range []string{"group=bad%20name", "group=w&from=1", "group=w&redelivery=1ms"} {
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.URL, "http")+"/v1/stream/jobs?"+q, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %v %v", q, err, resp)
		}
	}
}

func TestStreamGroupRedelivery(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/redo?from=latest")
	pub.Publish("j", 3)
	a := gwtest.JoinGroup(t, f, "/v1/stream/redo?group=g&window=2", false)
	got := a.Take(t, 2)
	b := gwtest.JoinGroup(t, f, "/v1/stream/redo?group=g", true)
	if s := b.Take(t, 1); s[0] != 3 {
		t.Fatalf("b got %v, want 3", s)
	}
	// a leaves without acking: b gets a's messages.
	_ = a.C.Close()
	if s := b.Take(t, 2); s[0] != got[0] || s[1] != got[1] {
		t.Fatalf("redelivered %v, want %v", s, got)
	}
	// A member that stays but does not ack in time loses its message to another.
	c := gwtest.JoinGroup(t, f, "/v1/stream/redo2?group=g&redelivery=200ms", false)
	pub2 := gwtest.DialStream(t, f, "/v1/stream/redo2?from=latest")
	pub2.Publish("x", 1)
	if s := c.Take(t, 1); s[0] != 1 {
		t.Fatalf("c got %v", s)
	}
	d := gwtest.JoinGroup(t, f, "/v1/stream/redo2?group=g&redelivery=200ms", true)
	if s := d.Take(t, 1); s[0] != 1 {
		t.Fatalf("d got %v, want the expired 1", s)
	}
}

func TestStreamGroupPositionSurvivesRestart(t *testing.T) {
	s, h, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/pos?from=latest")
	pub.Publish("a", 3)
	a := gwtest.JoinGroup(t, f, "/v1/stream/pos?group=g", true)
	a.Take(t, 3)
	_ = a.C.Close()
	// Poll (bounded) until the acks are stored.
	for end := time.Now().Add(10 * time.Second); ; {
		next, inflight := groupInfo(t, f, "pos", "g")
		if next == 4 && inflight == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("group state next=%d inflight=%d", next, inflight)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	gwtest.StartStreamHost(t, s, "h2")
	pub.Publish("b", 2)
	c := gwtest.JoinGroup(t, f, "/v1/stream/pos?group=g", true)
	if got := c.Take(t, 2); got[0] != 4 || got[1] != 5 {
		t.Fatalf("after restart: %v, want [4 5]", got)
	}
}

// TestStreamGroupLimit: a member of one group too many is closed with 1008 (reconnecting
// would not help), not 1013, and the reason says why.
func TestStreamGroupLimit(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range stream.MaxGroups {
		if _, err := f.StreamClient(t).GroupClaim(ctx, "lim", streamapi.GroupClaim{Group: fmt.Sprintf("g%d", i), Member: "a", Max: 1}); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
	}
	c := gwtest.DialStream(t, f, "/v1/stream/lim?group=one-more")
	_ = c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.C.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.HasPrefix(ce.Text, "too_many_groups: ") {
		t.Fatalf("closed with %v, want 1008 too_many_groups", err)
	}
}
