package conns

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"
)

// Drain ends every connection after what it had queued: a WebSocket with a 1012 close
// frame, an event stream with the last chunk of its body; it waits for those not accepted
// yet, ends at once any admitted afterwards, and tells long-polls through Draining.
func TestDrainEndsEveryConnection(t *testing.T) {
	h := newTestHub(t, Config{})
	ws, wsClient := tcpPair(t, h, StreamSocket)
	es, esClient := tcpPair(t, h, EventSource)
	pending := h.NewConn(ObjectSocket) // its object has not accepted it yet
	ws.Send([]byte("last"))
	es.Send([]byte("data: last\n\n"))
	select {
	case <-h.Draining():
		t.Fatal("draining before Drain")
	default:
	}

	drained := make(chan error, 1)
	go func() { drained <- h.Drain(context.Background()) }()
	<-h.Draining()
	if !h.IsDraining() {
		t.Fatal("IsDraining is false once Draining is closed")
	}

	r := bufio.NewReader(wsClient)
	_ = wsClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	if op, p, err := readFrame(r); err != nil || op != 1 || string(p) != "last" {
		t.Fatalf("first frame: op %d %q %v", op, p, err)
	}
	op, p, err := readFrame(r)
	if err != nil || op != 8 || len(p) < 2 {
		t.Fatalf("close frame: op %d %q %v", op, p, err)
	}
	if code := binary.BigEndian.Uint16(p); code != CloseServiceRestart || string(p[2:]) != DrainReason {
		t.Fatalf("close %d %q, want %d %q", code, p[2:], CloseServiceRestart, DrainReason)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after the close frame: %v, want EOF", err)
	}

	_ = esClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(esClient)
	if err != nil {
		t.Fatal(err)
	}
	if want := "c\r\ndata: last\n\n\r\n0\r\n\r\n"; string(body) != want {
		t.Fatalf("event stream %q, want %q", body, want)
	}

	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while a connection was still open", err)
	default:
	}
	if pending.Send([]byte("x")) {
		t.Fatal("a connection of a draining hub took a message")
	}
	pending.Discard()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return once every connection ended")
	}
	for k := range numKinds {
		if n := h.Open(k); n != 0 {
			t.Errorf("%d %s connections open after Drain", n, k)
		}
	}

	// One admitted while draining is ended as soon as it is accepted.
	late, lateClient := tcpPair(t, h, StreamSocket)
	if late.Send([]byte("x")) {
		t.Fatal("a connection admitted while draining took a message")
	}
	_ = lateClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	if op, p, err := readFrame(bufio.NewReader(lateClient)); err != nil || op != 8 || !strings.Contains(string(p), "draining") {
		t.Fatalf("late connection: op %d %q %v", op, p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Drain(ctx); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
}
