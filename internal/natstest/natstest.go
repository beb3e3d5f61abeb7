// Package natstest starts real nats-servers for tests: an embedded one with JetStream on
// disk, or a cluster of nats-server processes (natscluster).
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natscluster"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server starts an embedded server storing under t.TempDir() and stops it at cleanup.
func Server(t testing.TB) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Conn opens an in-process connection to s, closed at cleanup.
func Conn(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := natsembed.Connect(s, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitFor polls cond until it holds, failing the test when d passes first: tests wait on
// a condition with a deadline, never for a fixed time.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Cluster starts servers real nats-server processes (the version go.mod pins, built into
// t.TempDir()) on loopback: one JetStream cluster with routes between them, or a plain
// single server when servers is 1. They are killed when the test ends, and their logs
// shown if it failed.
func Cluster(t testing.TB, servers int) *natscluster.Cluster {
	t.Helper()
	dir := t.TempDir()
	bin, err := natscluster.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := natscluster.Start(ctx, natscluster.Options{Bin: bin, Dir: dir, Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, s := range c.Servers {
				t.Logf("--- nats-server %s ---\n%s", s.Name, s.Log())
			}
		}
	})
	return c
}
