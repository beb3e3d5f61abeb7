package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// notOwnerError says another host holds the lease.
type notOwnerError struct{ owner string }

func (e *notOwnerError) Error() string { return "object is owned by host " + e.owner }

// acquireLease claims the object for this host's current epoch and returns the revision
// of its entry. The entry has no TTL: it is this host's for as long as the host lease
// lives with that epoch. A fresh name costs one write (a create). An entry naming an epoch
// that is no longer live (its host died, or came back under a new epoch) is taken over by
// revision; an entry naming a live epoch of another host is a notOwnerError.
func (in *instance) acquireLease(ctx context.Context) (uint64, error) {
	h := in.h
	epoch, err := h.lease.wait(ctx)
	if err != nil {
		return 0, err
	}
	in.epoch = epoch
	val, _ := json.Marshal(wire.Lease{Host: h.id, Epoch: epoch})
	for attempt := 0; attempt < 4; attempt++ {
		rev, err := h.res.Leases.Create(ctx, in.key, val)
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("lease: %w", err)
		}
		e, gerr := h.res.Leases.Get(ctx, in.key)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) {
			continue // handed back between the two calls: try again
		}
		if gerr != nil {
			return 0, fmt.Errorf("lease: %w", gerr)
		}
		var l wire.Lease
		_ = json.Unmarshal(e.Value(), &l)
		live, err := h.epochLive(ctx, l)
		if err != nil {
			return 0, fmt.Errorf("lease: %w", err)
		}
		if live {
			if l.Host == h.id && l.Epoch == epoch {
				// Ours: left by an instance of this epoch that stopped without handing it
				// back (a failed release).
				return e.Revision(), nil
			}
			return 0, &notOwnerError{owner: l.Host}
		}
		// The epoch it names is dead: take the object over. The entry's revision makes it
		// one winner among hosts racing for it; the epoch record written next fences the
		// former owner's log.
		rev, err = h.res.Leases.Update(ctx, in.key, val, e.Revision())
		if err == nil {
			h.metrics.Takeovers.WithLabelValues(in.class).Inc()
			in.logger().Debug("object taken over from a host whose lease ended", "from", l.Host)
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, fmt.Errorf("lease: %w", err)
		}
	}
	return 0, errors.New("lease: contended, try again")
}

// epochLive reports whether the lease l still holds: its host's lease lives with l's
// epoch. This host answers for itself; for another, the watched host bucket answers when
// it shows the epoch live (the common case: a live owner, no round trip), and a read of
// the host's key confirms a death before anything is taken over, since the watch may lag
// behind a host that just took a new epoch. A lease without an epoch was written by an
// older Holdfast and lives until its own TTL ends.
func (h *Host) epochLive(ctx context.Context, l wire.Lease) (bool, error) {
	switch {
	case l.Epoch == "":
		return true, nil
	case l.Host == h.id:
		return h.lease.valid(l.Epoch), nil
	}
	if hl, ok := h.owners.Host(l.Host); ok && hl.Epoch == l.Epoch {
		return true, nil
	}
	e, err := h.res.Hosts.Get(ctx, l.Host)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var hl wire.HostLease
	_ = json.Unmarshal(e.Value(), &hl)
	return hl.Epoch == l.Epoch, nil
}

// releaseLease hands the object back so another host may take it at once: a purge
// conditional on the entry's revision (refused, harmlessly, if another host took the
// object over), whose marker expires soon so that the next activation is one write.
func (in *instance) releaseLease() {
	rev := in.entryRev.Load()
	if rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := in.h.res.Leases.Purge(ctx, in.key, jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL(in.h.opts.LeaseTTL)))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isFenced(err) {
		in.logger().Warn("lease release failed", "err", err)
	}
}

// leaseValid reports whether the instance may still commit by the local clock: its host
// lease epoch is the one held, within its deadline. The storage fence stands behind it.
func (in *instance) leaseValid() bool {
	return in.h.skipLocalChecks || in.h.lease.valid(in.epoch)
}

// leaseChanged is the lease watch's news of an object's entry: when an active object's
// entry was taken by another host (or removed by anyone but this instance) after this
// instance claimed it, the instance stops at once rather than at its next refused write.
func (h *Host) leaseChanged(key string, rev uint64, l wire.Lease) {
	if h.skipLocalChecks {
		return
	}
	h.mu.Lock()
	in := h.insts[key]
	h.mu.Unlock()
	if in == nil {
		return
	}
	if mine := in.entryRev.Load(); mine == 0 || rev <= mine || l.Host == h.id && l.Epoch == in.epoch {
		return
	}
	if l.Host != "" {
		in.logger().Warn("object taken over by another host; it stops here", "by", l.Host)
	}
	in.requestStop(stopLost)
}
