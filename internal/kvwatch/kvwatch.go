// Package kvwatch owns watching a JetStream KV bucket: one loop that hands a bucket's
// current entries and then every change to a callback, in order and from one goroutine,
// says when the current entries are all in, and opens the watch again when it ends (its
// subscription closed under it), so that a mirror of the bucket never silently stops
// following it. Every watch of a bucket in Holdfast goes through here.
package kvwatch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says what to watch and whom to tell. Callbacks run on the watch's goroutine,
// one at a time; a slow callback holds the watch back (nothing is dropped).
type Config struct {
	// What names the watch in logs ("alarm hints", "object owners").
	What string
	// Keys are KV key filters (wildcards allowed); none means every key.
	Keys []string
	// UpdatesOnly skips the current entries: only changes made after the watch opened.
	// A reopened watch resumes after the last revision seen, so no change is missed.
	UpdatesOnly bool
	// Begin, when set, is called each time a watch opens and is about to deliver the
	// bucket's current entries again (not for UpdatesOnly watches): with Synced, it lets a
	// mirror drop what vanished while no watch ran.
	Begin func()
	// Entry is called for every entry: a put, a delete or a purge (an expiry shows up as
	// a purge on buckets with per-key TTLs).
	Entry func(jetstream.KeyValueEntry)
	// Synced, when set, is called once a watch has delivered the current entries (for
	// UpdatesOnly watches: once it is open).
	Synced func()
	Logger *slog.Logger
}

// Watch is a running watch.
type Watch struct {
	kv      jetstream.KeyValue
	cfg     Config
	ctx     context.Context // the watch's lifetime
	cancel  context.CancelFunc
	done    chan struct{}
	synced  chan struct{} // closed at the first sync
	lastRev uint64        // of the last entry delivered; the loop's own
}

// Start opens the watch and keeps it running in the background until ctx ends or Stop is
// called. It fails if the first open fails; later failures are retried with backoff.
func Start(ctx context.Context, kv jetstream.KeyValue, cfg Config) (*Watch, error) {
	w := newWatch(ctx, kv, cfg)
	kw, err := w.open()
	if err != nil {
		w.cancel()
		close(w.done)
		return nil, err
	}
	go w.run(kw)
	return w, nil
}

// Run watches until ctx ends, opening the watch again (with backoff) whenever it cannot
// be opened or it ends.
func Run(ctx context.Context, kv jetstream.KeyValue, cfg Config) {
	w := newWatch(ctx, kv, cfg)
	w.run(nil)
}

func newWatch(ctx context.Context, kv jetstream.KeyValue, cfg Config) *Watch {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.What == "" {
		cfg.What = "kv watch"
	}
	w := &Watch{kv: kv, cfg: cfg, done: make(chan struct{}), synced: make(chan struct{})}
	ctx, w.cancel = context.WithCancel(ctx)
	w.cfg.Logger = cfg.Logger.With("watch", cfg.What)
	w.ctx = ctx
	return w
}

// WaitSynced waits until the watch has delivered the bucket's current entries once, or
// ctx ends.
func (w *Watch) WaitSynced(ctx context.Context) error {
	select {
	case <-w.synced:
		return nil
	case <-w.done:
		return errors.New("kvwatch: " + w.cfg.What + ": stopped before it synced")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop ends the watch and waits until its callbacks have returned.
func (w *Watch) Stop() {
	w.cancel()
	<-w.done
}

// open starts one watch: from the beginning, or after the last revision seen for a
// reopened UpdatesOnly watch.
func (w *Watch) open() (jetstream.KeyWatcher, error) {
	var opts []jetstream.WatchOpt
	switch {
	case w.cfg.UpdatesOnly && w.lastRev > 0:
		opts = append(opts, jetstream.ResumeFromRevision(w.lastRev+1))
	case w.cfg.UpdatesOnly:
		opts = append(opts, jetstream.UpdatesOnly())
	}
	// WatchFiltered rewrites the slice it is given: hand it a copy.
	kw, err := w.kv.WatchFiltered(w.ctx, slices.Clone(w.cfg.Keys), opts...)
	if err != nil {
		return nil, err
	}
	return kw, nil
}

// run delivers from kw (opening one first when nil) until the watch's context ends or its
// connection is closed for good.
func (w *Watch) run(kw jetstream.KeyWatcher) {
	defer close(w.done)
	defer w.cancel()
	backoff := 100 * time.Millisecond
	for {
		for kw == nil {
			var err error
			if kw, err = w.open(); err == nil {
				break
			}
			if w.ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
				return // shutting down: nothing to watch with
			}
			w.cfg.Logger.Warn("cannot open the watch; retrying", "in", backoff, "err", err)
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		synced := w.deliver(kw)
		_ = kw.Stop()
		kw = nil
		if w.ctx.Err() != nil {
			return
		}
		w.cfg.Logger.Debug("the watch ended; opening it again")
		if synced {
			backoff = 100 * time.Millisecond // it worked for a while: reopen at once
			continue
		}
		select { // it ended before it synced: do not spin
		case <-w.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// deliver hands kw's entries to the callbacks until its channel closes or the context
// ends. It reports whether the watch synced.
func (w *Watch) deliver(kw jetstream.KeyWatcher) bool {
	resumed := w.cfg.UpdatesOnly && w.lastRev > 0
	initial := !w.cfg.UpdatesOnly
	if initial && w.cfg.Begin != nil {
		w.cfg.Begin()
	}
	synced := false
	sync := func() {
		synced = true
		if w.cfg.Synced != nil {
			w.cfg.Synced()
		}
		select {
		case <-w.synced:
		default:
			close(w.synced)
		}
	}
	if !initial && !resumed {
		sync() // nothing to wait for: no marker comes
	}
	for {
		select {
		case <-w.ctx.Done():
			return synced
		case e, ok := <-kw.Updates():
			if !ok {
				return synced
			}
			if e == nil {
				if !synced {
					sync()
				}
				continue
			}
			w.lastRev = max(w.lastRev, e.Revision())
			w.cfg.Entry(e)
		}
	}
}

// Snapshot returns the current entries (puts only) of the keys matching keys (every key
// when none), read through one watch that stops once it has them.
func Snapshot(ctx context.Context, kv jetstream.KeyValue, keys ...string) ([]jetstream.KeyValueEntry, error) {
	var out []jetstream.KeyValueEntry
	w, err := Start(ctx, kv, Config{What: "snapshot", Keys: keys, Entry: func(e jetstream.KeyValueEntry) {
		if e.Operation() == jetstream.KeyValuePut {
			out = append(out, e)
		}
	}})
	if err != nil {
		return nil, err
	}
	err = w.WaitSynced(ctx)
	w.Stop()
	if err != nil {
		return nil, err
	}
	return out, nil
}
