package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
)

// benchSetup starts an embedded server, a host serving Counter and a client with the
// owner cache, as a gateway has it.
func benchSetup(b *testing.B) *objclient.Client {
	s := natstest.Server(b)
	startHost(b, s, Options{Classes: []objects.Class{counter.Class}, Logger: slog.New(slog.DiscardHandler)})
	return newClient(b, s)
}

// increment POSTs to Counter name and fails b unless it answers 200.
func increment(b *testing.B, c *objclient.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := httptest.NewRequest("POST", "/", nil)
	m, err := c.Request(ctx, "Counter", name, wire.EncodeRequest("", "Counter", name, r, nil))
	if err != nil {
		b.Error(err)
		return
	}
	if st := wire.Status(m); st != 200 && st != 0 {
		b.Errorf("status %d: %s", st, m.Data)
	}
}

// BenchmarkCounterIncrement drives one hot Counter through an in-process host and
// objclient with many requests in flight: the runtime and its group commit, without HTTP.
func BenchmarkCounterIncrement(b *testing.B) {
	c := benchSetup(b)
	increment(b, c, "hot")
	b.ReportAllocs()
	b.SetParallelism(32) // 32 × GOMAXPROCS in flight, so that records fill up
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			increment(b, c, "hot")
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incr/s")
}

// BenchmarkCounterIncrement100Names spreads the same load over 100 Counters.
func BenchmarkCounterIncrement100Names(b *testing.B) {
	c := benchSetup(b)
	for i := range 100 {
		increment(b, c, fmt.Sprintf("n%d", i))
	}
	b.ReportAllocs()
	b.SetParallelism(100)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		name := fmt.Sprintf("n%d", time.Now().UnixNano()%100)
		for pb.Next() {
			increment(b, c, name)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incr/s")
}

// BenchmarkColdActivation POSTs to a name never seen before, one at a time: lease, log
// read, epoch record and the first commit.
func BenchmarkColdActivation(b *testing.B) {
	c := benchSetup(b)
	increment(b, c, "warm")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		increment(b, c, fmt.Sprintf("cold-%d", i))
	}
}
