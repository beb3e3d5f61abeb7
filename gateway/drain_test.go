package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// TestDrainSendsEveryClientElsewhere: a draining gateway says so on /healthz at once,
// closes its stream and object WebSockets with 1012, ends its event streams, answers a
// waiting long-poll as at its timeout (long before it), refuses new long-lived
// connections with 503 and Retry-After, and still serves short requests.
func TestDrainSendsEveryClientElsewhere(t *testing.T) {
	s := natstest.Server(t)
	gwtest.StartStreamHost(t, s, "h1")
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{ID: "h2"})
	reg := prometheus.NewRegistry()
	const longPoll = time.Minute
	f := gwtest.StartGateway(t, s, gateway.Options{Streams: true, LongPollTimeout: longPoll, Metrics: reg})
	open := func(transport string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "holdfast_gateway_connections" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "transport" && l.GetValue() == transport {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		return 0
	}

	obj := gwtest.Dial(t, f, "/room/r1?user=u1")
	gwtest.Expect(t, obj, "joined u1")
	str := gwtest.DialStream(t, f, "/v1/stream/drain/ws")
	str.Publish("m", 1)
	u := f.URL + "/v1/stream/drain/ds"
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, u, map[string]string{"Content-Type": "application/json"}, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	es, _ := gwtest.SSELines(t, u, gwtest.AcceptEvents)
	type answer struct {
		status int
		next   string
		at     time.Time
		err    error
	}
	lp := make(chan answer, 1)
	go func() {
		res, err := http.Get(u + "?offset=now&live=long-poll")
		if err != nil {
			lp <- answer{err: err}
			return
		}
		res.Body.Close()
		lp <- answer{status: res.StatusCode, next: res.Header.Get("Stream-Next-Offset"), at: time.Now()}
	}()
	natstest.WaitFor(t, "every connection to be open", 10*time.Second, func() bool {
		return open(wire.ConnObjectSocket) == 1 && open(wire.ConnStreamSocket) == 1 && open(wire.ConnEventSource) == 1 && open(wire.ConnLongPoll) == 1
	})

	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.GW.Drain(ctx, 0); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !f.GW.Draining() || !errors.Is(f.GW.Healthy(), gateway.ErrDraining) {
		t.Fatalf("draining %v, healthy %v", f.GW.Draining(), f.GW.Healthy())
	}
	if st, _, body := gwtest.DSDo(t, http.MethodGet, f.URL+"/healthz", nil, ""); st != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"draining"}` {
		t.Fatalf("/healthz while draining: %d %q", st, body)
	}

	for name, c := range map[string]*websocket.Conn{"object socket": obj, "stream socket": str.C} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart || !strings.Contains(ce.Text, "draining") {
				t.Fatalf("%s: %v, want a 1012 close", name, err)
			}
			break
		}
	}
	for deadline := time.After(10 * time.Second); ; {
		select {
		case _, more := <-es:
			if more {
				continue
			}
		case <-deadline:
			t.Fatal("the event stream did not end")
		}
		break
	}
	select {
	case a := <-lp:
		if a.err != nil || a.status != http.StatusNoContent || a.next == "" {
			t.Fatalf("long-poll: %d, next offset %q, %v; want 204 with its offset", a.status, a.next, a.err)
		}
		if d := a.at.Sub(began); d > longPoll/4 {
			t.Fatalf("long-poll answered %v after the drain began; its timeout is %v", d, longPoll)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll was not answered")
	}

	// New long-lived connections are refused; short requests are served.
	for _, path := range []string{"/room/r1?user=u2", "/v1/stream/drain/ws"} {
		_, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.URL, "http")+path, nil)
		if err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Fatalf("upgrade %s while draining: %d, %v; want 503 with Retry-After", path, status, err)
		}
	}
	for _, q := range []string{"?offset=now&live=long-poll", "?offset=now&live=sse"} {
		st, hd, _ := gwtest.DSDo(t, http.MethodGet, u+q, nil, "")
		if st != http.StatusServiceUnavailable || hd.Get("Retry-After") == "" {
			t.Fatalf("GET %s while draining: %d, Retry-After %q", q, st, hd.Get("Retry-After"))
		}
	}
	res, err := http.Get(u)
	if err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("a catch-up read while draining: %v %v", res, err)
	}
	if st, _, body := gwtest.DSDo(t, http.MethodPost, f.URL+"/counter/drain", nil, ""); st != http.StatusOK {
		t.Fatalf("an object request while draining: %d %s", st, body)
	}
}
