package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// rawJetStream is the floor under Holdfast's publish path: an embedded nats-server in this
// process (file store, R1), async publishes of 128-byte messages to one subject with up to
// 4096 unanswered, for d. It returns acknowledged publishes per second.
func rawJetStream(dir string, d time.Duration) (float64, error) {
	s, err := server.NewServer(&server.Options{JetStream: true, StoreDir: filepath.Join(dir, "js"), DontListen: true})
	if err != nil {
		return 0, err
	}
	s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		return 0, fmt.Errorf("embedded nats-server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: nats.FileStorage}); err != nil {
		return 0, err
	}
	msg := make([]byte, 128)
	begin := time.Now()
	end := begin.Add(d)
	var n int
	for time.Now().Before(end) {
		for range 256 {
			if _, err := js.PublishAsync("bench.one", msg); err != nil {
				return 0, err
			}
			n++
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("raw JetStream: publishes unanswered after 30 s")
	}
	elapsed := time.Since(begin)
	info, err := js.StreamInfo("BENCH")
	if err != nil {
		return 0, err
	}
	return float64(info.State.Msgs) / elapsed.Seconds(), nil
}
