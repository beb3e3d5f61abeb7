package main

import (
	"context"
	"fmt"
	"github.com/holdfast/holdfast/bench/internal/measure"
	"os"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawJetStream measures what the runtime is built on: fenced publishes
// (Nats-Expected-Last-Subject-Sequence), one in flight per subject, on an embedded server
// with a file stream configured like Holdfast's object stream, over an in-process
// connection. It returns one result per subject count.
func rawJetStream(d time.Duration, subjectCounts []int, quiet time.Duration) ([]result, error) {
	dir, err := os.MkdirTemp("", "holdfast-bench-js-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		return nil, err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := natsembed.Connect(s, "bench-raw")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage,
		AllowDirect: true, Duplicates: 2 * time.Minute,
	}); err != nil {
		return nil, err
	}
	var out []result
	for run, n := range subjectCounts {
		parts := make([]*measure.Samples, n)
		var wg sync.WaitGroup
		measure.WaitQuiet(quiet)
		cpu := measure.NewCPUMeter(os.Getpid())
		start := time.Now()
		deadline := start.Add(d)
		for i := range n {
			parts[i] = &measure.Samples{}
			wg.Add(1)
			go func(p *measure.Samples, subject string) {
				defer wg.Done()
				m := nats.NewMsg(subject)
				m.Data = make([]byte, 128)
				var last uint64
				for time.Now().Before(deadline) {
					t := time.Now()
					ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last))
					if err != nil {
						p.Errors++
						continue
					}
					last = ack.Sequence
					p.Add(time.Since(t))
				}
			}(parts[i], fmt.Sprintf("bench.%d.%d", run, i))
		}
		wg.Wait()
		all := measure.Merge(parts)
		out = append(out, result{
			name: fmt.Sprintf("raw JetStream fenced publish, %d subject(s), 1 in flight each", n),
			rate: float64(all.Len()) / time.Since(start).Seconds(), s: all,
			note: cpu.String(),
		})
	}
	return out, nil
}
