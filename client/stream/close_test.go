package stream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
