package gateway_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPresenceCountsConnectionsByTransport: the presence key announces the gateway and,
// refreshed at each renewal, its open connections by transport, hijacked ones included
// until they close.
func TestPresenceCountsConnectionsByTransport(t *testing.T) {
	s := natstest.Server(t)
	gwtest.StartStreamHost(t, s, "h1")
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{ID: "h2"})
	f := gwtest.StartGateway(t, s, gateway.Options{Streams: true, Address: "http://gw.example:8787", Version: "v-test", ControlConn: natstest.Conn(t, s)})
	js, _ := jetstream.New(natstest.Conn(t, s))
	kv, err := js.KeyValue(context.Background(), wire.GatewayBucket)
	if err != nil {
		t.Fatal(err)
	}
	presence := func() wire.GatewayPresence {
		e, err := kv.Get(context.Background(), f.GW.ID())
		if err != nil {
			t.Fatal(err)
		}
		var p wire.GatewayPresence
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			t.Fatalf("presence %q: %v", e.Value(), err)
		}
		return p
	}
	waitCounts := func(want map[string]int) {
		t.Helper()
		var got map[string]int
		natstest.WaitFor(t, "the presence to count", 10*time.Second, func() bool {
			got = presence().Connections
			return maps.Equal(got, want)
		})
	}
	p := presence()
	if p.ID != f.GW.ID() || p.Address != "http://gw.example:8787" || p.Version != "v-test" || p.Started.IsZero() {
		t.Fatalf("presence %+v", p)
	}
	counts := func(obj, str, es, lp int) map[string]int {
		return map[string]int{wire.ConnObjectSocket: obj, wire.ConnStreamSocket: str, wire.ConnEventSource: es, wire.ConnLongPoll: lp, wire.ConnHTTP: 0}
	}
	waitCounts(counts(0, 0, 0, 0))

	obj := gwtest.Dial(t, f, "/room/r1?user=u1")
	gwtest.Expect(t, obj, "joined u1")
	str := gwtest.DialStream(t, f, "/v1/stream/p1")
	u := f.URL + "/v1/stream/p2"
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, u, map[string]string{"Content-Type": "application/json"}, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	_, stopES := gwtest.SSELines(t, u, gwtest.AcceptEvents)
	lpCtx, stopLP := context.WithCancel(context.Background())
	lpDone := make(chan struct{})
	go func() {
		defer close(lpDone)
		req, _ := http.NewRequestWithContext(lpCtx, http.MethodGet, u+"?offset=now&live=long-poll", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	waitCounts(counts(1, 1, 1, 1))

	_ = obj.Close()
	_ = str.C.Close()
	stopES()
	stopLP()
	<-lpDone
	waitCounts(counts(0, 0, 0, 0))
}
