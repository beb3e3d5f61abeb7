package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/nats-io/nats.go"
)

// TestHealthFollowsNATS starts a gateway before its NATS server exists: it serves 503 on
// /healthz (and on every route) while retrying, and 200 once the server is up.
func TestHealthFollowsNATS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	nc, err := nats.Connect("nats://"+addr, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	gw, err := New(nc, Options{Routes: []Route{{Pattern: "/counter/{name}", Class: "Counter"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
	})
	status := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("/healthz"); s != 503 {
		t.Fatalf("healthz before NATS: %d", s)
	}
	if s := status("/counter/a"); s != 503 {
		t.Fatalf("route before NATS: %d", s)
	}
	ns, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	waitFor(t, "healthz 200", 30*time.Second, func() bool { return status("/healthz") == 200 })
}
