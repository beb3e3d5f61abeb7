package wsstream_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/gateway/internal/wsstream"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// TestProducerFrames: a publish frame's producer fields go through to the stream, which
// stores a retry once and answers it with the original seq; malformed fields are a
// bad_field error and publish nothing.
func TestProducerFrames(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	c := gwtest.DialStream(t, f, "/v1/stream/prod")
	pub := func(id string, fields map[string]any) gwtest.Frame {
		t.Helper()
		fr := map[string]any{"type": "publish", "id": id, "data": id}
		for k, v := range fields {
			fr[k] = v
		}
		c.Write(fr)
		return c.Await(func(s gwtest.Frame) bool { return s.ID != nil && *s.ID == id })
	}
	p := func(epoch, seq any) map[string]any {
		return map[string]any{"producerId": "p", "producerEpoch": epoch, "producerSeq": seq}
	}
	if r := pub("a", p(0, 0)); r.Type != "published" || r.Seq != 1 {
		t.Fatalf("first: %+v", r)
	}
	if r := pub("b", p(0, 0)); r.Type != "published" || r.Seq != 1 {
		t.Fatalf("retry: %+v", r)
	}
	if r := pub("c", p(0, 2)); r.Type != "error" || r.Code != "producer_seq_gap" {
		t.Fatalf("gap: %+v", r)
	}
	for name, fields := range map[string]map[string]any{
		"missing seq":  {"producerId": "p", "producerEpoch": 0},
		"empty id":     {"producerId": "", "producerEpoch": 0, "producerSeq": 1},
		"numeric id":   {"producerId": 7, "producerEpoch": 0, "producerSeq": 1},
		"negative seq": p(0, -1),
		"fraction":     p(0.5, 1),
		"past 2^53":    p(0, uint64(1)<<53),
	} {
		if r := pub(name, fields); r.Type != "error" || r.Code != "bad_field" {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := pub("d", p(0, 1)); r.Type != "published" || r.Seq != 2 {
		t.Fatalf("next: %+v", r)
	}
}

// TestLostPublishIsSentAgain: a publish batch whose request is lost on the way (as one sent
// through a NATS server that dies) is sent again after publishAttempt when every message
// names a producer, and is stored once; without a producer it is not resent, and its
// publisher hears publish_failed when the request timeout ends.
func TestLostPublishIsSentAgain(t *testing.T) {
	t.Cleanup(wsstream.SetPublishAttempt(300 * time.Millisecond))
	_, _, f := gwtest.StartStreams(t, gateway.Options{RequestTimeout: 2 * time.Second})
	objects := f.Sender(t)
	var lose atomic.Int32 // publishes still to lose
	var sent atomic.Int32 // publishes sent, lost or not
	wsstream.SetSender(f.GW.ID(), streamclient.SenderFunc(func(ctx context.Context, class, name string, m *nats.Msg) (*nats.Msg, error) {
		if m.Header.Get(wire.HdrURL) == streamapi.RoutePublish {
			sent.Add(1)
			if lose.Add(-1) >= 0 {
				<-ctx.Done() // never answered
				return nil, ctx.Err()
			}
		}
		return objects.Request(ctx, class, name, m)
	}))
	c := gwtest.DialStream(t, f, "/v1/stream/lost")
	lose.Store(1)
	c.Write(map[string]any{"type": "publish", "id": "a", "data": 1, "producerId": "p", "producerEpoch": 0, "producerSeq": 0})
	if r := c.Await(func(s gwtest.Frame) bool { return s.ID != nil && *s.ID == "a" }); r.Type != "published" || r.Seq != 1 {
		t.Fatalf("a publish lost once: %+v, want published at seq 1", r)
	}
	if n := sent.Load(); n != 2 {
		t.Errorf("the publish was sent %d times, want 2 (lost, then again)", n)
	}
	// Without a producer a repeat could store it twice: it waits for the request timeout.
	lose.Store(1)
	sent.Store(0)
	c.Write(map[string]any{"type": "publish", "id": "b", "data": 2})
	if r := c.Await(func(s gwtest.Frame) bool { return s.ID != nil && *s.ID == "b" }); r.Type != "error" || r.Code != "publish_failed" {
		t.Fatalf("a publish without a producer, lost: %+v, want publish_failed", r)
	}
	if n := sent.Load(); n != 1 {
		t.Errorf("a publish without a producer was sent %d times, want 1", n)
	}
	c.Write(map[string]any{"type": "publish", "id": "c", "data": 3, "producerId": "p", "producerEpoch": 0, "producerSeq": 1})
	if r := c.Await(func(s gwtest.Frame) bool { return s.ID != nil && *s.ID == "c" }); r.Type != "published" || r.Seq != 2 {
		t.Fatalf("next publish: %+v, want published at seq 2 (the first stored once, the lost one never)", r)
	}
}
