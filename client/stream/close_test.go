package stream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPolicyViolationStopsReconnecting: a server that closes with 1008 would refuse the
// same handshake again, so the client reports it and stops instead of redialing forever.
func TestPolicyViolationStopsReconnecting(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		dials.Add(1)
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too_many_groups: at most 256"), time.Now().Add(time.Second))
		_ = ws.Close()
	}))
	t.Cleanup(srv.Close)
	got := make(chan *Error, 4)
	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/stream/s", Options{OnError: func(e *Error) { got <- e }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case e := <-got:
		if e.Code != "policy_violation" || !strings.Contains(e.Message, "too_many_groups") {
			t.Fatalf("error %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no policy_violation error")
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client kept running after a 1008 close")
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d handshakes, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Publish(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after the close: %v", err)
	}
}

// TestRestartCloseReconnectsAtOnce: a gateway that drains closes with 1012 (and one going
// away with 1001): the client reconnects at once, without its backoff's wait and without
// telling OnError, and resumes where it was (its client id, messages handled once).
func TestRestartCloseReconnectsAtOnce(t *testing.T) {
	const closes = 6
	type handshake struct {
		at    time.Time
		query url.Values
	}
	hs := make(chan handshake, closes+1)
	var dials atomic.Int32
	var mu sync.Mutex
	var closedAt [closes]time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		n := int(dials.Add(1)) - 1
		hs <- handshake{time.Now(), r.URL.Query()}
		if n >= closes {
			_, _, _ = ws.ReadMessage() // stays open until the client closes
			return
		}
		b, _ := json.Marshal(map[string]any{"type": "message", "stream": "s", "seq": n + 1, "data": n + 1})
		_ = ws.WriteMessage(websocket.TextMessage, b)
		code := websocket.CloseServiceRestart
		if n%2 == 1 {
			code = websocket.CloseGoingAway
		}
		mu.Lock()
		closedAt[n] = time.Now()
		mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "gateway draining: reconnect"), time.Now().Add(time.Second))
	}))
	t.Cleanup(srv.Close)
	var errs atomic.Int32
	got := make(chan uint64, closes+1)
	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/stream/s", Options{
		Client: "c1", MaxBackoff: 5 * time.Second,
		Handler: func(m Message) { got <- m.Seq },
		OnError: func(*Error) { errs.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var all []handshake
	for len(all) <= closes {
		select {
		case h := <-hs:
			all = append(all, h)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d handshakes, want %d", len(all), closes+1)
		}
	}
	// The fastest of the reconnects: one that waited the backoff (50 ms at least) each
	// time would never be below it, however loaded the machine.
	fastest := time.Hour
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i <= closes; i++ {
		fastest = min(fastest, all[i].at.Sub(closedAt[i-1]))
		if q := all[i].query; q.Get("client") != "c1" {
			t.Fatalf("reconnect %d asked %v, want client=c1", i, q)
		}
	}
	if fastest >= 50*time.Millisecond {
		t.Fatalf("the fastest of %d reconnects after 1012/1001 took %v: the client waited a backoff", closes, fastest)
	}
	for i := range closes {
		select {
		case seq := <-got:
			if seq != uint64(i+1) {
				t.Fatalf("message %d has seq %d", i, seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d messages handled, want %d", i, closes)
		}
	}
	if n := errs.Load(); n != 0 {
		t.Fatalf("OnError called %d times for restart closes", n)
	}
}
