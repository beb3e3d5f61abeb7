package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

// BenchmarkCounterHTTP is the whole request path in one process, as `holdfast dev` runs
// it: HTTP keep-alive → gateway → NATS → host → fenced commit → reply → HTTP. Profile it
// with -cpuprofile; bench/core measures the same path across processes.
func BenchmarkCounterHTTP(b *testing.B) {
	s := natstest.Server(b)
	log := slog.New(slog.DiscardHandler)
	hosttest.Start(b, natstest.Conn(b, s), runtime.Options{Classes: []objects.Class{counter.Class}, Logger: log})
	gw, err := gateway.New(natstest.Conn(b, s), gateway.Options{
		Routes: []gateway.Route{{Pattern: "/counter/{name}", Class: "Counter"}}, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	b.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
	})
	natstest.WaitFor(b, "the gateway to be ready", 10*time.Second, gw.Ready)
	const par = 32 // × GOMAXPROCS keep-alive clients
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: par * 8, DisableCompression: true}}
	post := func() {
		resp, err := c.Post(srv.URL+"/counter/hot", "", nil)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	post()
	b.ReportAllocs()
	b.SetParallelism(par)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
