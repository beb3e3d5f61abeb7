package gateway

import (
	"testing"
)

// TestProducerFrames: a publish frame's producer fields go through to the stream, which
// stores a retry once and answers it with the original seq; malformed fields are a
// bad_field error and publish nothing.
func TestProducerFrames(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	c := sdial(t, f, "/v1/stream/prod")
	pub := func(id string, fields map[string]any) sframe {
		t.Helper()
		fr := map[string]any{"type": "publish", "id": id, "data": id}
		for k, v := range fields {
			fr[k] = v
		}
		c.write(fr)
		return c.await(func(s sframe) bool { return s.ID != nil && *s.ID == id })
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
