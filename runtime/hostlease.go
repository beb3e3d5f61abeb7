package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// hostLease is this host's lease: one TTL'd key in the host bucket, renewed by the host
// every TTL/4 on the control-plane connection, whatever the number of objects it holds.
// Each object entry in the lease bucket names the host and the epoch of this lease, and is
// valid only while that epoch lives. A lease that lapses (the host was paused, cut off or
// too slow to renew) is never renewed again: every object held under it stops, and the
// host starts a new epoch, so that it cannot mistake objects taken over meanwhile for its
// own. The key's value is also the host's announcement (wire.HostLease).
type hostLease struct {
	h       *Host
	js      jetstream.JetStream // the control plane's
	kv      jetstream.KeyValue  // the host bucket, on the control plane's connection
	ttl     time.Duration
	started time.Time

	mu    sync.Mutex
	epoch string // "" while not held
	rev   uint64
	until time.Time     // local deadline of epoch: before the server's expiry
	held  chan struct{} // closed while an epoch is held
}

// errNoHostLease: the host does not hold its lease right now (it lapsed and is being taken
// again); objects cannot be activated here until it is.
var errNoHostLease = errors.New("this host's lease lapsed and is being renewed")

func newHostLease(h *Host, js jetstream.JetStream, kv jetstream.KeyValue) *hostLease {
	return &hostLease{h: h, js: js, kv: kv, ttl: h.opts.LeaseTTL, started: time.Now().UTC(), held: make(chan struct{})}
}

// value is the lease's announcement for epoch.
func (l *hostLease) value(epoch string) []byte {
	classes := make([]string, 0, len(l.h.classes))
	for c := range l.h.classes {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	b, _ := json.Marshal(wire.HostLease{
		ID: l.h.id, Epoch: epoch, Version: l.h.opts.Version, Started: l.started,
		Classes: classes, Active: l.h.Active(),
	})
	return b
}

// acquire takes the lease under a new epoch. With takeover (at start), a live key of this
// host's id is taken over by revision: it is left by a run of this host that did not stop
// cleanly, and its objects become free at once instead of after a TTL. Without takeover (a
// lease that lapsed), a live key means another process runs with this host id.
func (l *hostLease) acquire(ctx context.Context, takeover bool) error {
	epoch := nuid.Next()
	val := l.value(epoch)
	sent := time.Now()
	rev, err := l.kv.Create(ctx, l.h.id, val, jetstream.KeyTTL(l.ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		if !takeover {
			return fmt.Errorf("host lease: the key %s.%s is held by another process with the same host id", wire.HostBucket, l.h.id)
		}
		var e jetstream.KeyValueEntry
		if e, err = l.kv.Get(ctx, l.h.id); err == nil {
			l.h.log.Warn("this host id's lease was still live (a previous run did not stop cleanly, or another process uses the same --host-id); taking it over")
			rev, err = cluster.RenewTTL(ctx, l.js, wire.HostBucket, l.h.id, val, e.Revision(), l.ttl)
		}
	}
	if err != nil {
		return fmt.Errorf("host lease: %w", err)
	}
	l.mu.Lock()
	l.epoch, l.rev, l.until = epoch, rev, l.deadline(sent)
	close(l.held)
	l.mu.Unlock()
	return nil
}

// deadline is how long a renewal sent at sent keeps the lease, by the local clock: a
// fifth of the TTL short of the server's expiry, so the host stops writing first.
func (l *hostLease) deadline(sent time.Time) time.Time { return sent.Add(l.ttl - l.ttl/5) }

// current returns the epoch held now, or "".
func (l *hostLease) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == "" || !time.Now().Before(l.until) {
		return ""
	}
	return l.epoch
}

// valid reports whether epoch is held and within its deadline.
func (l *hostLease) valid(epoch string) bool { return epoch != "" && l.current() == epoch }

// wait returns the epoch held, waiting up to a TTL for one when the lease is being taken
// again after a lapse.
func (l *hostLease) wait(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl)
	defer cancel()
	for {
		l.mu.Lock()
		held := l.held
		l.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return "", errNoHostLease
		}
		if e := l.current(); e != "" {
			return e, nil
		}
		// Held but past its deadline: a renewal is due; look again shortly.
		select {
		case <-time.After(l.ttl / 20):
		case <-ctx.Done():
			return "", errNoHostLease
		}
	}
}

// run renews the lease until ctx ends. A renewal refused by the server (the key expired or
// was taken) ends the epoch: every object held under it stops, and a new epoch is taken.
func (l *hostLease) run(ctx context.Context) {
	t := time.NewTicker(l.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		epoch, rev := l.epoch, l.rev
		l.mu.Unlock()
		if epoch == "" {
			actx, cancel := context.WithTimeout(ctx, l.ttl/2)
			if err := l.acquire(actx, false); err != nil && ctx.Err() == nil {
				l.h.log.Warn("cannot take the host lease again yet; retrying", "err", err)
			} else if err == nil {
				l.h.log.Info("host lease taken under a new epoch")
			}
			cancel()
			continue
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, l.ttl/2)
		next, err := cluster.RenewTTL(rctx, l.js, wire.HostBucket, l.h.id, l.value(epoch), rev, l.ttl)
		cancel()
		m := l.h.metrics
		m.LeaseRenewalTime.Observe(time.Since(sent).Seconds())
		switch {
		case err == nil:
			m.LeaseRenewals.WithLabelValues(metrics.RenewOK).Inc()
			l.mu.Lock()
			if l.epoch == epoch {
				l.rev, l.until = next, l.deadline(sent)
			}
			l.mu.Unlock()
		case cluster.IsWrongLastSeq(err):
			m.LeaseRenewals.WithLabelValues(metrics.RenewLapsed).Inc()
			l.lost()
		case ctx.Err() == nil:
			m.LeaseRenewals.WithLabelValues(metrics.RenewError).Inc()
			l.h.log.Warn("host lease renewal failed; retrying", "err", err)
		}
	}
}

// lost ends the epoch: nothing more commits under it, and every object held under it stops
// without handing anything over (another host may already own it).
func (l *hostLease) lost() {
	l.mu.Lock()
	l.epoch = ""
	l.held = make(chan struct{})
	l.mu.Unlock()
	n := l.h.stopAll(stopLost)
	l.h.metrics.LeasesLost.Inc()
	l.h.log.Warn("host lease lost; its objects stop and move", "objects", n)
}

// release deletes the lease (a clean stop: gateways forget this host's objects without
// giving up requests in flight, which it has answered), then purges the key with a TTL so
// that nothing of it stays in the bucket.
func (l *hostLease) release() {
	l.mu.Lock()
	epoch, rev := l.epoch, l.rev
	l.epoch = ""
	l.mu.Unlock()
	if epoch == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	del, err := cluster.DeleteKey(ctx, l.js, wire.HostBucket, l.h.id, rev)
	if err != nil {
		l.h.log.Warn("host lease release failed; it expires by itself", "err", err)
		return
	}
	_ = l.kv.Purge(ctx, l.h.id, jetstream.LastRevision(del), jetstream.PurgeTTL(markerTTL(l.ttl)))
}

// markerTTL is how long the purge marker of a handed-back lease stays: long enough for
// every watcher to see it, short enough that the next activation finds no key at all and
// takes the lease in one write.
func markerTTL(leaseTTL time.Duration) time.Duration { return max(leaseTTL, time.Second) }
