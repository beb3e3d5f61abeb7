package wsstream_test

import (
	"testing"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
)

// TestStreamDurableRedelivery: a durable client's unacknowledged messages come again, in
// order, from its first unacknowledged seq, once the redelivery timeout passes; acked
// ones do not; a subscriber that is not durable is never sent anything twice.
func TestStreamDurableRedelivery(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/rd?from=latest")
	pub.Publish("a", 6)

	plain := gwtest.DialStream(t, f, "/v1/stream/rd?window=4&redelivery=200ms")
	plain.Messages(1, 4)

	c := gwtest.DialStream(t, f, "/v1/stream/rd?client=w&window=4&redelivery=200ms")
	c.Messages(1, 4)
	c.Write(map[string]any{"type": "ack", "seq": 2})
	c.Messages(5, 2) // the ack made room in the window
	// Nothing acked since: 3 to 6 again, in order.
	c.Messages(3, 4)
	c.Write(map[string]any{"type": "ack", "seq": 6})
	pub.Publish("b", 1)
	if m := c.Messages(7, 1); m[0].Seq != 7 {
		t.Fatalf("%+v", m)
	}
	c.Write(map[string]any{"type": "ack", "seq": 7})
	if r := c.Command("x", "getServerInfo", nil); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	for _, fr := range c.Buffered() {
		if fr.Type == "error" {
			t.Fatalf("error frame %+v", fr)
		}
	}

	// The plain subscriber, which never acked either, got nothing again (its 5th message
	// waits for room in its window).
	if r := plain.Command("y", "getServerInfo", nil); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	for _, fr := range plain.Buffered() {
		t.Fatalf("a subscriber without client= was sent %+v", fr)
	}
}
