package app

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Replication decides, at the start of a gateway or an object host, how many replicas
// every stream and bucket gets (cluster.Resolve) and brings the existing ones to it
// (cluster.Audit). It retries what may pass (NATS not reachable yet, a cluster still
// forming) until ctx ends, and returns a cluster.RefusedError at once: the process must
// not start with settings that lose acknowledged writes.
func Replication(ctx context.Context, nc *nats.Conn, p cluster.Policy, log *slog.Logger) (int, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		pl, err := cluster.Resolve(actx, js, p)
		if err == nil {
			err = cluster.Audit(actx, js, pl.Replicas, log)
		}
		cancel()
		switch {
		case err == nil:
			log.Info("replication decided", "replicas", pl.Replicas, "jetstream_servers", serversText(pl.Servers))
			return pl.Replicas, nil
		case errors.Is(err, cluster.ErrRefused):
			return 0, err
		}
		log.Warn("cannot decide replication yet; retrying", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

func serversText(n int) string {
	switch n {
	case 0:
		return "not probed"
	case 3:
		return "3 or more"
	}
	return strconv.Itoa(n)
}
