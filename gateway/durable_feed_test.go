package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLongPollsReuseOneConsumer: a reader's successive long-polls share the gateway's feed
// of the stream instead of leaving a JetStream consumer behind each (which once exhausted
// the server's consumer limit after a few thousand polls).
func TestLongPollsReuseOneConsumer(t *testing.T) {
	s, _, f := startStreams(t, Options{LongPollTimeout: 20 * time.Millisecond})
	u := f.url + "/v1/stream/polled"
	st, h, _ := dsDo(t, http.MethodPut, u, map[string]string{"Content-Type": "text/plain"}, "x")
	if st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	tail := h.Get("Stream-Next-Offset")
	for i := 0; i < 50; i++ {
		if st, _, _ := dsDo(t, http.MethodGet, u+"?offset="+tail+"&live=long-poll", nil, ""); st != http.StatusNoContent {
			t.Fatalf("long-poll %d: %d", i, st)
		}
	}
	js, err := jetstream.New(natstest.Conn(t, s))
	if err != nil {
		t.Fatal(err)
	}
	str, err := js.Stream(context.Background(), wire.LogStream(StreamClass, "polled"))
	if err != nil {
		t.Fatal(err)
	}
	if n := str.CachedInfo().State.Consumers; n > 1 {
		t.Fatalf("%d consumers on the stream after 50 long-polls, want at most 1", n)
	}
}
