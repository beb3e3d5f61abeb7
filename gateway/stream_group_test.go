package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// member is a group member's connection read by its own goroutine: message frames go to
// msgs; with autoAck each is acked once read.
type member struct {
	c    *websocket.Conn
	msgs chan uint64
}

func joinGroup(t *testing.T, f *fixture, path string, autoAck bool) *member {
	t.Helper()
	m := &member{c: dial(t, f, path), msgs: make(chan uint64, 1024)}
	go func() {
		defer close(m.msgs)
		for {
			_, raw, err := m.c.ReadMessage()
			if err != nil {
				return
			}
			var fr sframe
			if json.Unmarshal(raw, &fr) != nil || fr.Type != "message" {
				continue
			}
			if autoAck {
				b, _ := json.Marshal(map[string]any{"type": "ack", "seq": fr.Seq})
				if m.c.WriteMessage(websocket.TextMessage, b) != nil {
					return
				}
			}
			m.msgs <- fr.Seq
		}
	}()
	return m
}

func (m *member) ack(t *testing.T, seq uint64) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "ack", "seq": seq})
	if err := m.c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

// take reads n seqs from m within 20 s.
func (m *member) take(t *testing.T, n int) []uint64 {
	t.Helper()
	return recvN(t, m.msgs, n)
}

// recvN receives n values from ch within 20 s; ch closing first fails the test.
func recvN[T any](t *testing.T, ch <-chan T, n int) []T {
	t.Helper()
	var out []T
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("connection closed after %v", out)
			}
			out = append(out, v)
		case <-timeout:
			t.Fatalf("got %v, want %d", out, n)
		}
	}
	return out
}

// groupInfo asks the stream object for a group's state.
func groupInfo(t *testing.T, f *fixture, stream, group string) (next uint64, inflight int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := f.gw.sc.GroupInfo(ctx, stream, group)
	if err != nil {
		t.Fatal(err)
	}
	return out.Next, out.Inflight
}

func TestStreamGroupSharesWithoutOverlap(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	a := joinGroup(t, f, "/v1/stream/jobs?group=w&client=a&window=4", false)
	b := joinGroup(t, f, "/v1/stream/jobs?group=w&client=b&window=4", false)
	pub := sdial(t, f, "/v1/stream/jobs?from=latest")
	pub.publish("j", 8)
	// Nothing acked: each member holds its window of 4, and they are disjoint.
	seen := map[uint64]bool{}
	for _, m := range []*member{a, b} {
		for _, s := range m.take(t, 4) {
			if seen[s] {
				t.Fatalf("seq %d delivered twice", s)
			}
			seen[s] = true
			m.ack(t, s)
		}
	}
	// Acked, more flow; every seq once over both members.
	pub.publish("k", 32)
	deadline := time.After(20 * time.Second)
	for len(seen) < 40 {
		var s uint64
		var m *member
		select {
		case s = <-a.msgs:
			m = a
		case s = <-b.msgs:
			m = b
		case <-deadline:
			t.Fatalf("got %d of 40", len(seen))
		}
		if s == 0 || seen[s] {
			t.Fatalf("seq %d delivered twice (or a member closed)", s)
		}
		seen[s] = true
		m.ack(t, s)
	}
	for _, q := range []string{"group=bad%20name", "group=w&from=1", "group=w&redelivery=1ms"} {
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http")+"/v1/stream/jobs?"+q, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %v %v", q, err, resp)
		}
	}
}

func TestStreamGroupRedelivery(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	pub := sdial(t, f, "/v1/stream/redo?from=latest")
	pub.publish("j", 3)
	a := joinGroup(t, f, "/v1/stream/redo?group=g&window=2", false)
	got := a.take(t, 2)
	b := joinGroup(t, f, "/v1/stream/redo?group=g", true)
	if s := b.take(t, 1); s[0] != 3 {
		t.Fatalf("b got %v, want 3", s)
	}
	// a leaves without acking: b gets a's messages.
	_ = a.c.Close()
	if s := b.take(t, 2); s[0] != got[0] || s[1] != got[1] {
		t.Fatalf("redelivered %v, want %v", s, got)
	}
	// A member that stays but does not ack in time loses its message to another.
	c := joinGroup(t, f, "/v1/stream/redo2?group=g&redelivery=200ms", false)
	pub2 := sdial(t, f, "/v1/stream/redo2?from=latest")
	pub2.publish("x", 1)
	if s := c.take(t, 1); s[0] != 1 {
		t.Fatalf("c got %v", s)
	}
	d := joinGroup(t, f, "/v1/stream/redo2?group=g&redelivery=200ms", true)
	if s := d.take(t, 1); s[0] != 1 {
		t.Fatalf("d got %v, want the expired 1", s)
	}
}

func TestStreamGroupPositionSurvivesRestart(t *testing.T) {
	s, h, f := startStreams(t, Options{})
	pub := sdial(t, f, "/v1/stream/pos?from=latest")
	pub.publish("a", 3)
	a := joinGroup(t, f, "/v1/stream/pos?group=g", true)
	a.take(t, 3)
	_ = a.c.Close()
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
	startStreamHost(t, s, "h2")
	pub.publish("b", 2)
	c := joinGroup(t, f, "/v1/stream/pos?group=g", true)
	if got := c.take(t, 2); got[0] != 4 || got[1] != 5 {
		t.Fatalf("after restart: %v, want [4 5]", got)
	}
}

// TestStreamGroupLimit: a member of one group too many is closed with 1008 (reconnecting
// would not help), not 1013, and the reason says why.
func TestStreamGroupLimit(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range stream.MaxGroups {
		if _, err := f.gw.sc.GroupClaim(ctx, "lim", streamapi.GroupClaim{Group: fmt.Sprintf("g%d", i), Member: "a", Max: 1}); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
	}
	c := sdial(t, f, "/v1/stream/lim?group=one-more")
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.HasPrefix(ce.Text, "too_many_groups: ") {
		t.Fatalf("closed with %v, want 1008 too_many_groups", err)
	}
}
