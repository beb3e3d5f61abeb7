package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/objlog"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
)

type stopReason int

const (
	stopIdle stopReason = iota + 1
	stopShutdown
	stopLost
)

// String is the reason as logs and metrics name it.
func (r stopReason) String() string {
	switch r {
	case stopIdle:
		return metrics.EvictIdle
	case stopShutdown:
		return metrics.EvictDrain
	case stopLost:
		return metrics.EvictLost
	}
	return "unknown"
}

// event is one thing for an instance to do.
type event struct {
	msg         *nats.Msg // a request: fetch, socket message or close, alarm wake-up
	gatewayLost string    // a gateway holding some of our sockets is gone
	call        *callDone // the answer to a call the object made with Stub.Go
}

// output is something an event produced that may leave only after its writes are durable.
type output struct {
	reply *nats.Msg // answers to, when set
	msg   *nats.Msg // the reply, or a command to a gateway
}

// batch is the writes of one or more events, committed as one log record.
type batch struct {
	ops      []objlog.Op
	opBytes  int
	snapshot []byte // when set, the record to publish instead of ops
	outputs  []output
	alarm    *int64 // when set, the alarm (unix ms, 0 = none) to mirror into the hint bucket
	log      *logChange
}

// writesNothing: b only carries outputs, which need no commit.
func (b *batch) writesNothing() bool {
	return len(b.ops) == 0 && b.snapshot == nil && b.alarm == nil && b.log.empty()
}

func (b *batch) empty() bool {
	return len(b.ops) == 0 && len(b.outputs) == 0 && b.alarm == nil && b.log.empty()
}

// Snapshot policy: a snapshot replaces the log once enough records piled up since the last
// one, bounding activation cost while keeping snapshots rare for large states.
const (
	snapshotMinRecords = 16
	snapshotMaxRecords = 256
)

type instance struct {
	h                    *Host
	class, name, key     string
	subject              string
	epoch                string        // the host lease epoch the object was claimed under
	entryRev             atomic.Uint64 // revision of its entry in the lease bucket
	mu                   sync.Mutex
	queue                []event
	stopped              bool
	wake                 chan struct{}
	stopReq              chan stopReason
	obj                  objects.Object
	st                   *state
	log                  *objLog // nil until the object first uses its log
	lastSeq              uint64  // owned by the committer once active
	open                 *batch
	inflight             bool
	commitCh             chan *batch
	doneCh               chan error
	sinceSnap, bytesSnap int
	// calls counts the Stub.Go calls out (owned by the loop); callCtx ends them when the
	// instance stops.
	calls      int
	callCtx    context.Context
	callCancel context.CancelFunc

	purgeMu sync.Mutex
	purgeTo uint64 // the newest snapshot's seq not yet purged before; 0 = none
	purging bool
}

func newInstance(h *Host, class, name string) *instance {
	in := &instance{
		h: h, class: class, name: name, key: names.Key(class, name),
		subject: wire.ObjectSubjectPrefix + class + "." + names.Subject(name),
		wake:    make(chan struct{}, 1), stopReq: make(chan stopReason, 1),
		open: &batch{}, commitCh: make(chan *batch), doneCh: make(chan error, 1),
	}
	in.st = newState(in)
	in.callCtx, in.callCancel = context.WithCancel(h.ctx)
	return in
}

// logger is the host's logger naming the object: made when a line is logged, so that an
// idle object holds none.
func (in *instance) logger() *slog.Logger { return in.h.log.With("object", in.key) }

// enqueue hands ev to the instance, or answers it "not owner" once the instance stops.
func (in *instance) enqueue(ev event) {
	in.mu.Lock()
	if in.stopped {
		in.mu.Unlock()
		if ev.msg != nil {
			respond(ev.msg, wire.ErrorReply(wire.ErrNotOwner, "object is moving"))
		}
		return
	}
	if len(in.queue) >= in.h.opts.Limits.MaxQueue && ev.msg != nil {
		in.mu.Unlock()
		in.h.metrics.Refusals.WithLabelValues(in.class, metrics.RefuseOverloaded).Inc()
		respond(ev.msg, wire.ErrorReply(wire.ErrOverloaded, "object queue is full"))
		return
	}
	in.queue = append(in.queue, ev)
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (in *instance) requestStop(r stopReason) {
	select {
	case in.stopReq <- r:
	default:
	}
}

// closeQueue stops taking events and answers the waiting ones with reply(): they never
// ran, so the gateway may safely send them to the next owner.
func (in *instance) closeQueue(reply func() *nats.Msg) {
	in.mu.Lock()
	in.stopped = true
	q := in.queue
	in.queue = nil
	in.mu.Unlock()
	for _, ev := range q {
		if ev.msg != nil {
			respond(ev.msg, reply())
		}
	}
}

// errorReply makes closeQueue answer with an error code and message.
func errorReply(code, msg string) func() *nats.Msg {
	return func() *nats.Msg { return wire.ErrorReply(code, msg) }
}

func (in *instance) run() {
	defer in.h.wg.Done()
	defer in.h.remove(in)
	defer in.callCancel()
	ctx, cancel := context.WithTimeout(in.h.ctx, 10*time.Second)
	began := time.Now()
	err := in.activate(ctx)
	cancel()
	m := in.h.metrics
	if err != nil {
		var no *notOwnerError
		if errors.As(err, &no) {
			m.Activations.WithLabelValues(in.class, metrics.ActivationNotOwner).Inc()
			in.closeQueue(func() *nats.Msg {
				r := wire.ErrorReply(wire.ErrNotOwner, "")
				r.Header.Set(wire.HdrOwner, no.owner)
				return r
			})
			return
		}
		m.Activations.WithLabelValues(in.class, metrics.ActivationError).Inc()
		in.logger().Warn("activation failed", "err", err)
		in.closeQueue(errorReply(wire.ErrUnavailable, "activation failed: "+err.Error()))
		return
	}
	m.Activations.WithLabelValues(in.class, metrics.ActivationOK).Inc()
	m.ActivationDuration.WithLabelValues(in.class).Observe(time.Since(began).Seconds())
	active := m.Active.WithLabelValues(in.class)
	active.Inc()
	defer active.Dec()
	go in.committer()
	in.finish(in.loop())
}

// loop runs events until the instance must stop.
func (in *instance) loop() stopReason {
	idle := time.NewTimer(in.h.opts.IdleTimeout)
	defer idle.Stop()
	alarm := time.NewTimer(time.Hour)
	alarm.Stop()
	defer alarm.Stop()
	in.resetAlarmTimer(alarm)
	// Sockets whose gateway died while the object slept are closed first.
	in.closeDeadGatewaySockets()
	for {
		in.flush()
		select {
		case <-in.wake:
			if in.runQueued() {
				idle.Reset(in.h.opts.IdleTimeout)
			}
			in.resetAlarmTimer(alarm)
		case err := <-in.doneCh:
			in.inflight = false
			if err != nil {
				in.logger().Warn("commit failed; object stops", "err", err)
				return stopLost
			}
			// Events held back by a full batch can run now.
			if in.runQueued() {
				idle.Reset(in.h.opts.IdleTimeout)
			}
		case <-alarm.C:
			in.fireAlarm()
			in.resetAlarmTimer(alarm)
			idle.Reset(in.h.opts.IdleTimeout)
		case <-idle.C:
			in.mu.Lock()
			busy := len(in.queue) > 0
			in.mu.Unlock()
			// An object waiting for answers to its calls is not idle: they would be lost.
			if !busy && !in.inflight && in.open.empty() && in.calls == 0 {
				return stopIdle
			}
			idle.Reset(in.h.opts.IdleTimeout)
		case r := <-in.stopReq:
			return r
		}
	}
}

// runQueued runs waiting events until the queue is empty or the next record is full.
func (in *instance) runQueued() bool {
	ran := false
	// While a commit is in flight and the next record is already large, events wait.
	for !(in.inflight && in.open.opBytes >= in.h.opts.Limits.batchBytes) {
		in.mu.Lock()
		if len(in.queue) == 0 {
			in.mu.Unlock()
			break
		}
		ev := in.queue[0]
		in.queue[0] = event{}
		in.queue = in.queue[1:]
		in.mu.Unlock()
		in.handle(ev)
		ran = true
		in.flush()
	}
	if ran {
		// More may have arrived while the last ones ran; look again soon.
		in.mu.Lock()
		more := len(in.queue) > 0
		in.mu.Unlock()
		if more {
			select {
			case in.wake <- struct{}{}:
			default:
			}
		}
	}
	return ran
}

// flush hands the open batch to the committer when it is idle: while a commit is in
// flight, writes pile up in the open batch and go together in the next record.
func (in *instance) flush() {
	if in.inflight || in.open.empty() {
		return
	}
	b := in.open
	in.open = &batch{}
	if b.writesNothing() {
		// Replies of events that wrote nothing (a rate limiter's answer, say) need no
		// commit, and nothing earlier is in flight: they leave now, without the hop
		// through the committer that a caller waiting on them would pay for.
		in.release(b)
		return
	}
	if len(b.ops) > 0 {
		in.sinceSnap++
		in.bytesSnap += b.opBytes
		if in.sinceSnap >= snapshotMaxRecords ||
			in.sinceSnap >= snapshotMinRecords && in.bytesSnap > in.st.bytes+64<<10 {
			b.snapshot = in.st.snapshot()
			in.sinceSnap, in.bytesSnap = 0, 0
		}
	}
	in.inflight = true
	in.commitCh <- b
}

// finish stops the instance: commits what is pending (unless the lease is lost), hands the
// lease back, and answers what is still queued so the gateway retries elsewhere. A lost
// lease is handed back too: the purge is conditional on the entry's revision, so it only
// clears an entry nobody took over (one naming an epoch that died).
func (in *instance) finish(reason stopReason) {
	in.closeQueue(errorReply(wire.ErrNotOwner, "object is moving"))
	in.callCancel() // the answers of calls still out would find nobody
	if in.inflight {
		err := <-in.doneCh
		in.inflight = false
		if err != nil {
			reason = stopLost
		}
	}
	if reason != stopLost && !in.open.empty() {
		in.flush()
		if in.inflight { // not when the batch only had replies, which flush sent itself
			if err := <-in.doneCh; err != nil {
				reason = stopLost
			}
			in.inflight = false
		}
	} else if !in.open.empty() {
		failOutputs(in.open, "object lost its lease")
	}
	close(in.commitCh)
	in.releaseLease()
	in.h.metrics.Evictions.WithLabelValues(in.class, reason.String()).Inc()
	in.logger().Debug("object stopped", "reason", reason.String())
}

// committer publishes batches in order and releases their outputs once durable.
func (in *instance) committer() {
	m := in.h.metrics
	commits := [2]prometheus.Counter{m.Commits.WithLabelValues(in.class, metrics.ResultOK), m.Commits.WithLabelValues(in.class, metrics.ResultError)}
	for b := range in.commitCh {
		began := time.Now()
		err := in.commit(b)
		m.CommitDuration.Observe(time.Since(began).Seconds())
		if err != nil {
			commits[1].Inc()
			failOutputs(b, "the object's write was not committed: "+err.Error())
		} else {
			commits[0].Inc()
			in.release(b)
		}
		in.doneCh <- err
	}
}

// release sends b's outputs: its replies and gateway commands.
func (in *instance) release(b *batch) {
	for _, o := range b.outputs {
		if o.reply != nil {
			o.msg.Header.Set(wire.HdrHost, in.h.id)
			respond(o.reply, o.msg)
		} else {
			_ = in.h.nc.PublishMsg(o.msg)
		}
	}
}

func failOutputs(b *batch, why string) {
	for _, o := range b.outputs {
		if o.reply != nil {
			respond(o.reply, wire.ErrorReply(wire.ErrCommitFailed, why))
		}
	}
}

// commit makes b durable: the alarm hint first (a spare hint only wakes an object for
// nothing; a missing one would lose an alarm), then the record, fenced on the last
// sequence this owner wrote so that the storage itself refuses a former owner.
func (in *instance) commit(b *batch) error {
	ctx, cancel := context.WithTimeout(in.h.ctx, 10*time.Second)
	defer cancel()
	if b.alarm != nil && *b.alarm != 0 {
		if _, err := in.h.res.Alarms.Put(ctx, in.key, encodeMillis(*b.alarm)); err != nil {
			return fmt.Errorf("alarm hint: %w", err)
		}
	}
	if len(b.ops) > 0 || b.snapshot != nil {
		if !in.leaseValid() {
			return errors.New("lease expired before commit")
		}
		rec := b.snapshot
		if rec == nil {
			rec = objlog.Encode(objlog.KindDelta, b.ops)
		}
		seq, err := in.publishFenced(ctx, rec)
		if err != nil {
			return err
		}
		if b.snapshot != nil {
			in.schedulePurge(seq)
		}
	}
	// The log after the record: the record's fenced publish has just shown this host
	// still owns the object, and the appends are fenced on their own sequence too.
	if !b.log.empty() {
		if !in.leaseValid() {
			return errors.New("lease expired before commit")
		}
		if err := in.commitLog(ctx, b.log); err != nil {
			return err
		}
	}
	if b.alarm != nil && *b.alarm == 0 {
		if err := in.h.res.Alarms.Delete(ctx, in.key); err != nil {
			in.logger().Warn("alarm hint delete failed", "err", err)
		}
	}
	return nil
}

// publishFenced appends rec to the object's log, conditional on the log's last sequence
// being the one this owner last wrote. A try that goes unanswered is made again, every
// publishAttempt until ctx ends (publish.go), with the same message id, so a record that
// did land is not written twice.
func (in *instance) publishFenced(ctx context.Context, rec []byte) (uint64, error) {
	m := nats.NewMsg(in.subject)
	m.Data = rec
	id := nuid.Next()
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		ack, err := in.h.js.PublishMsg(actx, m, jetstream.WithExpectLastSequencePerSubject(in.lastSeq),
			jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			in.lastSeq = ack.Sequence
			return ack.Sequence, nil
		}
		if !retryable(err) || ctx.Err() != nil || !pauseBeforeRetry(ctx, err) {
			return 0, err
		}
	}
}

func isFenced(err error) bool { return cluster.IsWrongLastSeq(err) }

// activate takes the lease, loads the object's state from its log, writes an epoch record
// (which fences every write of a former owner), and constructs the object.
func (in *instance) activate(ctx context.Context) error {
	rev, err := in.acquireLease(ctx)
	if err != nil {
		return err
	}
	in.entryRev.Store(rev)
	for attempt := 0; ; attempt++ {
		seq, err := in.load(ctx)
		if err == nil && !in.leaseValid() {
			err = errors.New("the host lease lapsed while loading")
		}
		if err == nil {
			m := nats.NewMsg(in.subject)
			m.Data = objlog.EncodeEpoch(in.h.id)
			var ack *jetstream.PubAck
			ack, err = in.h.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(seq))
			if err == nil {
				in.lastSeq = ack.Sequence
				break
			}
		}
		if !isFenced(err) || attempt == 4 {
			in.releaseLease()
			return fmt.Errorf("load: %w", err)
		}
		// A former owner landed a record between our read and our epoch: read again, as
		// long as the entry is still ours (a host that took the object over meanwhile wrote
		// that record; its epoch must stand).
		if e, gerr := in.h.res.Leases.Get(ctx, in.key); gerr != nil || e.Revision() != rev {
			in.releaseLease()
			return &notOwnerError{}
		}
	}
	class := in.h.classes[in.class]
	if err := in.st.protect(func() { in.obj = class.New(in.st) }); err != nil {
		in.releaseLease()
		return fmt.Errorf("constructing %s: %w", in.class, err)
	}
	if in.obj == nil {
		in.releaseLease()
		return fmt.Errorf("class %s: New returned nil", in.class)
	}
	return nil
}

// load rebuilds the state from the log and returns the log's last sequence.
func (in *instance) load(ctx context.Context) (uint64, error) {
	in.st.reset()
	last, err := in.h.res.Objects.GetLastMsgForSubject(ctx, in.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for seq := uint64(1); seq <= last.Sequence; {
		m, err := in.h.res.Objects.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(in.subject))
		if err != nil {
			return 0, err
		}
		if err := in.st.applyRecord(m.Data); err != nil {
			return 0, fmt.Errorf("record %d: %w", m.Sequence, err)
		}
		seq = m.Sequence + 1
	}
	return last.Sequence, nil
}

// schedulePurge drops the log records before the snapshot at seq, off the commit path: a
// purge can take milliseconds, and commits must not wait for it. One purge runs at a time
// per object; a newer snapshot replaces a pending one. A purge that never happens (the host
// died) only leaves records the next snapshot's purge removes.
func (in *instance) schedulePurge(seq uint64) {
	in.purgeMu.Lock()
	in.purgeTo = max(in.purgeTo, seq)
	running := in.purging
	in.purging = true
	in.purgeMu.Unlock()
	if running {
		return
	}
	go func() {
		for {
			in.purgeMu.Lock()
			upTo := in.purgeTo
			in.purgeTo = 0
			if upTo == 0 {
				in.purging = false
				in.purgeMu.Unlock()
				return
			}
			in.purgeMu.Unlock()
			ctx, cancel := context.WithTimeout(in.h.ctx, 30*time.Second)
			err := in.h.res.Objects.Purge(ctx, jetstream.WithPurgeSubject(in.subject), jetstream.WithPurgeSequence(upTo))
			cancel()
			if err != nil && in.h.ctx.Err() == nil {
				in.logger().Warn("purge after snapshot failed", "err", err)
			}
		}
	}()
}
