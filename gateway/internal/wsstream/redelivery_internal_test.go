package wsstream

import (
	"slices"
	"testing"
	"time"
)

// TestRedeliveryCheck drives one subscription's redelivery by hand: it waits for the
// oldest unacked message's timeout, sends everything unacked again, and an ack of a seq
// delivered before that stays valid (and moves the subscription past it).
func TestRedeliveryCheck(t *testing.T) {
	rd := newSubRedelivery(time.Second)
	defer rd.stop()
	// fetching: nothing is read from a feed; the test plays its part.
	s := &streamSub{fetching: true, window: 8, next: 3, inflight: []uint64{1, 2}, rd: rd}
	t0 := time.Now()
	s.checkRedelivery(t0) // 1 and 2 were sent by now
	s.next, s.inflight = 5, append(s.inflight, 3, 4)
	s.checkRedelivery(t0.Add(600 * time.Millisecond)) // 3 and 4 by then
	if msg := s.ack(2); msg != "" {
		t.Fatal(msg)
	}
	s.checkRedelivery(t0.Add(1100 * time.Millisecond))
	if s.next != 5 || !slices.Equal(s.inflight, []uint64{3, 4}) {
		t.Fatalf("redelivered before 3 waited its timeout: next %d, inflight %v", s.next, s.inflight)
	}
	s.checkRedelivery(t0.Add(1700 * time.Millisecond))
	if s.next != 3 || len(s.inflight) != 0 || rd.count != 1 {
		t.Fatalf("not redelivered: next %d, inflight %v, count %d", s.next, s.inflight, rd.count)
	}
	// The client acks 4 from the first delivery before 3 and 4 were read again.
	if msg := s.ack(4); msg != "" {
		t.Fatalf("ack 4 after the redelivery began: %s", msg)
	}
	if s.next != 5 || s.acked != 4 {
		t.Fatalf("after the ack: next %d, acked %d", s.next, s.acked)
	}
	if msg := s.ack(5); msg == "" {
		t.Fatal("ack of a seq never delivered accepted")
	}
	s.checkRedelivery(t0.Add(5 * time.Second))
	if rd.count != 1 || len(rd.samples) != 0 {
		t.Fatalf("nothing in flight, yet count %d, samples %v", rd.count, rd.samples)
	}
}
