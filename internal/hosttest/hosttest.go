// Package hosttest starts object hosts for the tests of the packages above the runtime
// (gateway, built-in classes, clients, examples); the runtime's own tests have theirs.
package hosttest

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats.go"
)

// Start runs an object host on nc with opts and closes it when the test ends.
func Start(t testing.TB, nc *nats.Conn, opts runtime.Options) *runtime.Host {
	t.Helper()
	h, err := runtime.New(context.Background(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Close(ctx)
	})
	return h
}
