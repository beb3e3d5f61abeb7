package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
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

// BenchmarkCallerEvents drives one hot object whose every event calls one of 100 other
// objects (a chat room asking its members' rate limiters) and writes one key, with 64
// requests in flight. With Stub.Fetch the caller's event loop waits out each call's round
// trip; with Stub.Go it goes on and takes the answers as events of their own. "1ms" makes
// each answer take a millisecond, as a callee on a busy or distant host does.
func BenchmarkCallerEvents(b *testing.B) {
	for _, delay := range []string{"0s", "1ms"} {
		for _, mode := range []string{"fetch", "go"} {
			b.Run(mode+"/"+delay, func(b *testing.B) {
				s := natstest.Server(b)
				startHost(b, s, Options{Classes: []objects.Class{callerClass, calleeClass}, Namespaces: callBinds,
					Logger: slog.New(slog.DiscardHandler)})
				c := newClient(b, s)
				var n atomic.Int64
				call := func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					path := fmt.Sprintf("/bench?mode=%s&delay=%s&to=%d", mode, delay, n.Add(1)%100)
					m, err := fetch(ctx, c, "Caller", "hot", "POST", path)
					if err != nil {
						b.Error(err)
					} else if st := wire.Status(m); st != 200 && st != 0 {
						b.Errorf("status %d: %s", st, m.Data)
					}
				}
				for range 100 { // activate every callee
					call()
				}
				b.ReportAllocs()
				b.SetParallelism(32) // 64 in flight on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call()
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
