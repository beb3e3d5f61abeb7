package dshttp_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLongPollsReuseOneConsumer: a reader's successive long-polls share the gateway's feed
// of the stream instead of leaving a JetStream consumer behind each (which once exhausted
// the server's consumer limit after a few thousand polls).
func TestLongPollsReuseOneConsumer(t *testing.T) {
	s, _, f := gwtest.StartStreams(t, gateway.Options{LongPollTimeout: 20 * time.Millisecond})
	u := f.URL + "/v1/stream/polled"
	st, h, _ := gwtest.DSDo(t, http.MethodPut, u, map[string]string{"Content-Type": "text/plain"}, "x")
	if st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	tail := h.Get("Stream-Next-Offset")
	for i := 0; i < 50; i++ {
		if st, _, _ := gwtest.DSDo(t, http.MethodGet, u+"?offset="+tail+"&live=long-poll", nil, ""); st != http.StatusNoContent {
			t.Fatalf("long-poll %d: %d", i, st)
		}
	}
	js, err := jetstream.New(natstest.Conn(t, s))
	if err != nil {
		t.Fatal(err)
	}
	str, err := js.Stream(context.Background(), wire.LogStream(gateway.StreamClass, "polled"))
	if err != nil {
		t.Fatal(err)
	}
	if n := str.CachedInfo().State.Consumers; n > 1 {
		t.Fatalf("%d consumers on the stream after 50 long-polls, want at most 1", n)
	}
}
