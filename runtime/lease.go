package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// notOwnerError says another host holds the lease.
type notOwnerError struct{ owner string }

func (e *notOwnerError) Error() string { return "object is owned by host " + e.owner }

// acquireLease takes the object's lease with a TTL and returns its revision. An expired
// or released lease is taken over; a live one held by another host is a notOwnerError.
func (in *instance) acquireLease(ctx context.Context) (uint64, error) {
	h := in.h
	val, _ := json.Marshal(wire.Lease{Host: h.id})
	for attempt := 0; attempt < 3; attempt++ {
		rev, err := h.res.Leases.Create(ctx, in.key, val, jetstream.KeyTTL(h.opts.LeaseTTL))
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("lease: %w", err)
		}
		e, gerr := h.res.Leases.Get(ctx, in.key)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) {
			continue // expired between the two calls: try again
		}
		if gerr != nil {
			return 0, fmt.Errorf("lease: %w", gerr)
		}
		var l wire.Lease
		_ = json.Unmarshal(e.Value(), &l)
		if l.Host != h.id {
			return 0, &notOwnerError{owner: l.Host}
		}
		// A lease of this host's own, left by an instance that stopped without handing it
		// back: take it over by revision.
		return in.renewLease(ctx, e.Revision())
	}
	return 0, errors.New("lease: contended, try again")
}

// renewLease republishes the lease with a fresh TTL, conditional on rev. kv.Update would
// drop the TTL (nats.go issue 1994), so this publishes to the key's subject directly.
func (in *instance) renewLease(ctx context.Context, rev uint64) (uint64, error) {
	val, _ := json.Marshal(wire.Lease{Host: in.h.id})
	return cluster.RenewTTL(ctx, in.h.js, wire.LeaseBucket, in.key, val, rev, in.h.opts.LeaseTTL)
}

// renewer keeps the lease alive until quit closes, and stops the instance when the lease is
// lost. leaseUntil is moved forward only on success, measured from before the send, so the
// local deadline always falls before the server's expiry.
func (in *instance) renewer(quit <-chan struct{}) {
	ttl := in.h.opts.LeaseTTL
	t := time.NewTicker(ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(in.h.ctx, ttl/2)
		rev, err := in.renewLease(ctx, in.leaseRev.Load())
		cancel()
		switch {
		case err == nil:
			in.leaseRev.Store(rev)
			in.leaseUntil.Store(sent.Add(ttl - ttl/5).UnixNano())
		case isFenced(err):
			in.h.log.Warn("lease lost", "object", in.key)
			in.requestStop(stopLost)
			return
		default:
			in.h.log.Warn("lease renewal failed, retrying", "object", in.key, "err", err)
		}
	}
}

// releaseLease hands the lease back so another host may take the object at once.
func (in *instance) releaseLease() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := in.h.res.Leases.Delete(ctx, in.key, jetstream.LastRevision(in.leaseRev.Load()))
	if err != nil && !isFenced(err) {
		in.h.log.Warn("lease release failed; it expires by itself", "object", in.key, "err", err)
	}
}

func (in *instance) leaseValid() bool {
	return in.h.skipClockCheck || time.Now().UnixNano() < in.leaseUntil.Load()
}
