package gateway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/holdfast/holdfast/internal/natstest"
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
	gw, err := gateway.New(nc, gateway.Options{Routes: []gateway.Route{{Pattern: "/counter/{name}", Class: "Counter"}}})
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
	natstest.WaitFor(t, "healthz 200", 30*time.Second, func() bool { return status("/healthz") == 200 })
}

// TestHealthWaitsForReadiness: /healthz stays 503, saying why, until Options.Readiness
// answers nil.
func TestHealthWaitsForReadiness(t *testing.T) {
	var ready atomic.Bool
	f := gwtest.StartGateway(t, natstest.Server(t), gateway.Options{Readiness: func() error {
		if !ready.Load() {
			return errors.New("the file store is not open yet")
		}
		return nil
	}})
	get := func() (int, string) {
		resp, err := http.Get(f.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := get(); st != http.StatusServiceUnavailable || !strings.Contains(b, "file store") {
		t.Fatalf("before ready: %d %s", st, b)
	}
	ready.Store(true)
	if st, b := get(); st != http.StatusOK {
		t.Fatalf("after ready: %d %s", st, b)
	}
}
