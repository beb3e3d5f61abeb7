package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"time"

	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// Stale object entries. An entry naming an epoch that died (its host crashed or froze, or
// came back under a new epoch) is free: the next request for the object takes it over by
// revision. Entries of objects nobody asks for again would stay for ever, so one live host
// clears them: when a host's lease goes, the live host ranking first for that host's id
// (rendezvous hashing over the live hosts' ids, so that exactly one sweeps each, and
// another takes over the job if it dies) scans the lease bucket a TTL later (requests take
// the busy objects over first) and purges each entry naming a dead epoch of that host,
// conditional on its revision: an entry taken over or handed back meanwhile is left alone.
// A host starting up sweeps the same way for every dead host it ranks first for, which
// covers hosts that died while no other host ran.

// sweepHost schedules a sweep of the entries left by host id, if this host ranks first
// for it.
func (h *Host) sweepHost(id string) {
	if id == h.id || !h.started.Load() {
		return
	}
	time.AfterFunc(h.opts.LeaseTTL, func() {
		if h.ctx.Err() != nil || !h.ranksFirst(id) {
			return
		}
		h.sweep(func(host string) bool { return host == id })
	})
}

// ranksFirst reports whether this host is the live host that sweeps for host id.
func (h *Host) ranksFirst(id string) bool {
	best, bestScore := h.id, rank(id, h.id)
	for _, other := range h.owners.LiveHosts() {
		if s := rank(id, other); s > bestScore || s == bestScore && other < best {
			best, bestScore = other, s
		}
	}
	return best == h.id
}

func rank(dead, live string) uint64 {
	f := fnv.New64a()
	_, _ = f.Write([]byte(dead))
	_, _ = f.Write([]byte{0})
	_, _ = f.Write([]byte(live))
	return f.Sum64()
}

// sweep purges the entries whose host matches and whose epoch is dead, and returns how
// many it purged.
func (h *Host) sweep(match func(host string) bool) int {
	ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
	defer cancel()
	entries, err := kvwatch.Snapshot(ctx, h.res.Leases)
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Warn("sweeping stale object leases: cannot read the lease bucket", "err", err)
		}
		return 0
	}
	dead := map[wire.Lease]bool{} // epochs confirmed, read once each
	n := 0
	for _, e := range entries {
		var l wire.Lease
		if json.Unmarshal(e.Value(), &l) != nil || l.Epoch == "" || l.Host == h.id || !match(l.Host) {
			continue
		}
		d, known := dead[l]
		if !known {
			live, err := h.epochLive(ctx, l)
			if err != nil {
				continue
			}
			d = !live
			dead[l] = d
		}
		if !d {
			continue
		}
		err := h.res.Leases.Purge(ctx, e.Key(), jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(markerTTL(h.opts.LeaseTTL)))
		switch {
		case err == nil:
			n++
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isFenced(err):
		default:
			if ctx.Err() == nil {
				h.log.Warn("sweeping stale object leases", "object", e.Key(), "err", err)
			}
			return n
		}
	}
	if n > 0 {
		h.log.Info("swept stale object leases of dead hosts", "entries", n)
	}
	return n
}

// sweepAtStart sweeps for every dead host this host ranks first for.
func (h *Host) sweepAtStart() {
	h.sweep(func(host string) bool {
		_, live := h.owners.Host(host)
		return !live && h.ranksFirst(host)
	})
}
