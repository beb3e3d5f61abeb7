package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// objLog is an object's message log: its own JetStream stream, whose sequence is the log's
// seq. Appends are published pipelined, each conditional on the previous seq
// (Nats-Expected-Last-Sequence), so a former owner's late append is refused by JetStream
// while one owner still streams without waiting a round trip per message.
//
// The event loop owns first, next and cfg; the committer owns exists; durable is shared.
type objLog struct {
	in              *instance
	stream, subject string
	loaded          bool
	first, next     uint64
	cfg             objects.LogConfig
	firstAt         time.Time   // when first was last read from JetStream
	exists          atomic.Bool // its JetStream stream exists
	handle          jetstream.Stream
	durable         atomic.Uint64 // last committed seq
}

// firstRefresh bounds how stale Info's FirstSeq may be under retention.
const firstRefresh = time.Second

type logAppend struct {
	seq     uint64
	data    []byte
	headers map[string]string
}

// logChange is what one event (and then one batch) does to the log.
type logChange struct {
	appends []logAppend
	trim    uint64 // drop up to and including; 0 = none
	cfg     *objects.LogConfig
}

func (c *logChange) empty() bool {
	return c == nil || len(c.appends) == 0 && c.trim == 0 && c.cfg == nil
}

func (c *logChange) merge(o *logChange) {
	c.appends = append(c.appends, o.appends...)
	c.trim = max(c.trim, o.trim)
	if o.cfg != nil {
		c.cfg = o.cfg
	}
}

var _ objects.Log = (*logView)(nil)

// logView is the objects.Log handed to the object.
type logView state

func (s *state) Log() objects.Log { return (*logView)(s) }

func (v *logView) s() *state { return (*state)(v) }

// log returns the instance's log, reading its state from JetStream on first use.
func (s *state) log() (*objLog, error) {
	in := s.in
	if in.log == nil {
		in.log = &objLog{in: in, stream: wire.LogStream(in.class, in.name), subject: wire.LogSubject(in.class, in.name)}
	}
	l := in.log
	if l.loaded {
		return l, nil
	}
	ctx, cancel := context.WithTimeout(in.h.ctx, 10*time.Second)
	defer cancel()
	st, err := cluster.Lookup(ctx, in.h.js, l.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		l.first, l.next = 1, 1
	case err != nil:
		return nil, fmt.Errorf("runtime: log: %w", err)
	default:
		info := st.CachedInfo()
		// Made by a process with other settings: scaled up to ours, or refused.
		if err := cluster.Conform(ctx, in.h.js, info, in.h.opts.Replicas, in.h.log); err != nil {
			return nil, fmt.Errorf("runtime: log: %w", err)
		}
		l.handle = st
		l.exists.Store(true)
		l.first, l.next = info.State.FirstSeq, info.State.LastSeq+1
		if info.State.Msgs == 0 {
			l.first = l.next
		}
		l.cfg = objects.LogConfig{MaxMsgs: max(info.Config.MaxMsgs, 0), MaxBytes: max(info.Config.MaxBytes, 0), MaxAge: info.Config.MaxAge}
		l.durable.Store(info.State.LastSeq)
	}
	l.loaded = true
	return l, nil
}

func (s *state) logChange() *logChange {
	if s.ev.log == nil {
		s.ev.log = &logChange{}
	}
	return s.ev.log
}

func (v *logView) Stream() string  { return wire.LogStream(v.in.class, v.in.name) }
func (v *logView) Subject() string { return wire.LogSubject(v.in.class, v.in.name) }

func (v *logView) Append(data []byte, headers map[string]string) (uint64, error) {
	s := v.s()
	if err := s.inEvent(); err != nil {
		return 0, err
	}
	for k := range headers {
		if len(k) >= 3 && strings.EqualFold(k[:3], "Hf-") || len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") || k == "" {
			return 0, fmt.Errorf("%w: header %q is reserved", objects.ErrBadKey, k)
		}
	}
	// A message is its own JetStream message, never part of a snapshot: what bounds it is
	// one event's writes, not a storage value.
	if lim := s.in.h.opts.Limits.MaxEventBytes; len(data) > lim {
		return 0, fmt.Errorf("%w: message of %d bytes, the limit is %d", objects.ErrValueTooLarge, len(data), lim)
	}
	l, err := s.log()
	if err != nil {
		return 0, err
	}
	seq := l.next
	l.next++
	c := s.logChange()
	c.appends = append(c.appends, logAppend{seq: seq, data: append([]byte(nil), data...), headers: headers})
	s.ev.bytes += len(data) + 64
	return seq, nil
}

func (v *logView) Info() objects.LogInfo {
	l, err := v.s().log()
	if err != nil {
		v.in.logger().Warn("log info unavailable", "err", err)
		return objects.LogInfo{FirstSeq: 1}
	}
	// Retention removes messages from the front without telling us: ask JetStream, at
	// most once per firstRefresh, since appends ask too and must not pay a round trip.
	if l.handle != nil && (l.cfg != objects.LogConfig{}) && time.Since(l.firstAt) >= firstRefresh {
		l.firstAt = time.Now()
		ctx, cancel := context.WithTimeout(v.in.h.ctx, 5*time.Second)
		info, err := l.handle.Info(ctx)
		cancel()
		if err == nil && info.State.Msgs > 0 {
			l.first = max(l.first, info.State.FirstSeq)
		} else if err == nil && info.State.LastSeq >= l.first {
			l.first = info.State.LastSeq + 1
		}
	}
	return objects.LogInfo{FirstSeq: l.first, LastSeq: l.next - 1}
}

func (v *logView) Trim(upTo uint64) error {
	s := v.s()
	if err := s.inEvent(); err != nil {
		return err
	}
	l, err := s.log()
	if err != nil {
		return err
	}
	upTo = min(upTo, l.next-1)
	if upTo < l.first {
		return nil
	}
	c := s.logChange()
	c.trim = max(c.trim, upTo)
	l.first = upTo + 1
	return nil
}

func (v *logView) Configure(cfg objects.LogConfig) error {
	s := v.s()
	if err := s.inEvent(); err != nil {
		return err
	}
	if cfg.MaxMsgs < 0 || cfg.MaxBytes < 0 || cfg.MaxAge < 0 {
		return errors.New("objects: negative log limit")
	}
	l, err := s.log()
	if err != nil {
		return err
	}
	if cfg == l.cfg && l.exists.Load() {
		return nil
	}
	l.cfg = cfg
	s.logChange().cfg = &cfg
	return nil
}

func (v *logView) Read(ctx context.Context, from uint64, maxMsgs int) ([]objects.LogMessage, error) {
	l, err := v.s().log()
	if err != nil {
		return nil, err
	}
	last := l.durable.Load()
	if l.handle == nil || from > last || maxMsgs <= 0 {
		return nil, nil
	}
	from = max(from, 1)
	var out []objects.LogMessage
	for seq := from; seq <= last && len(out) < maxMsgs; seq++ {
		m, err := l.handle.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by retention or a trim
		}
		if err != nil {
			return out, err
		}
		lm := objects.LogMessage{Seq: m.Sequence, Time: m.Time, Data: m.Data}
		if len(m.Header) > 0 {
			lm.Headers = map[string]string{}
			for k := range m.Header {
				lm.Headers[k] = m.Header.Get(k)
			}
		}
		out = append(out, lm)
	}
	return out, nil
}

// undo rolls back what a failed event did to the log's counters.
func (l *objLog) undo(c *logChange, first uint64, cfg objects.LogConfig) {
	l.next -= uint64(len(c.appends))
	l.first, l.cfg = first, cfg
}

// commitLog makes a batch's log changes durable: creates the stream on first use, applies
// a new retention, publishes the appends pipelined and fenced, then trims.
func (in *instance) commitLog(ctx context.Context, c *logChange) error {
	l := in.log
	js := in.h.js
	scfg := func(cfg objects.LogConfig) jetstream.StreamConfig {
		sc := jetstream.StreamConfig{
			Name: l.stream, Subjects: []string{l.subject}, Storage: jetstream.FileStorage,
			Replicas: in.h.opts.Replicas, AllowDirect: true, Discard: jetstream.DiscardOld,
			Metadata: map[string]string{"holdfast.object": in.key},
			MaxMsgs:  -1, MaxBytes: -1, MaxAge: cfg.MaxAge,
		}
		if cfg.MaxMsgs > 0 {
			sc.MaxMsgs = cfg.MaxMsgs
		}
		if cfg.MaxBytes > 0 {
			sc.MaxBytes = cfg.MaxBytes
		}
		return sc
	}
	if !l.exists.Load() || c.cfg != nil {
		cfg := objects.LogConfig{}
		if c.cfg != nil {
			cfg = *c.cfg
		} else if l.handle != nil {
			cfg = l.cfg
		}
		st, err := cluster.Stream(ctx, js, scfg(cfg), in.h.log)
		if err != nil {
			return fmt.Errorf("log stream: %w", err)
		}
		l.handle = st
		l.exists.Store(true)
	}
	if len(c.appends) > 0 {
		if err := in.appendLog(ctx, c.appends); err != nil {
			return err
		}
	}
	if c.trim > 0 {
		if err := l.handle.Purge(ctx, jetstream.WithPurgeSequence(c.trim+1)); err != nil {
			return fmt.Errorf("log trim: %w", err)
		}
	}
	return nil
}

// appendLog publishes appends pipelined, each conditional on the seq before it. Should one
// go unanswered for publishAttempt (a stream electing a leader drops what it is sent,
// publish.go), it and every one after it are published again one at a time until ctx
// ends. A retry whose earlier try did land is refused as out of sequence; that it landed
// is then read back: while this instance holds the lease, nothing but its own appends can
// stand at its seqs (a former owner's are fenced off), so the message there, if it has
// the same bytes, is the one sent.
func (in *instance) appendLog(ctx context.Context, appends []logAppend) error {
	l := in.log
	msgs := make([]*nats.Msg, len(appends))
	futures := make([]jetstream.PubAckFuture, len(appends))
	for i, a := range appends {
		m := nats.NewMsg(l.subject)
		m.Data = a.data
		for k, v := range a.headers {
			m.Header.Set(k, v)
		}
		msgs[i] = m
		f, err := in.h.js.PublishMsgAsync(m, jetstream.WithExpectLastSequence(a.seq-1))
		if err != nil {
			return fmt.Errorf("log append: %w", err)
		}
		futures[i] = f
	}
	timer := time.NewTimer(publishAttempt)
	defer timer.Stop()
	for i, f := range futures {
		var err error
		select {
		case ack := <-f.Ok():
			if ack.Sequence != appends[i].seq {
				return fmt.Errorf("log append: stored at %d, expected %d", ack.Sequence, appends[i].seq)
			}
			l.durable.Store(ack.Sequence)
			timer.Reset(publishAttempt) // unanswered means no answer for an attempt
			continue
		case err = <-f.Err():
			if !retryable(err) {
				return fmt.Errorf("log append %d: %w", appends[i].seq, err)
			}
		case <-timer.C:
			err = context.DeadlineExceeded
		case <-ctx.Done():
			return fmt.Errorf("log append: %w", ctx.Err())
		}
		in.logger().Warn("log append unanswered; publishing again", "seq", appends[i].seq, "err", err)
		for j := i; j < len(appends); j++ {
			select {
			case ack := <-futures[j].Ok(): // answered meanwhile
				if ack.Sequence == appends[j].seq {
					l.durable.Store(ack.Sequence)
					continue
				}
			default:
			}
			if err := in.appendAgain(ctx, msgs[j], appends[j].seq); err != nil {
				return fmt.Errorf("log append %d: %w", appends[j].seq, err)
			}
			l.durable.Store(appends[j].seq)
		}
		return nil
	}
	return nil
}

// appendAgain publishes m as the log's message seq again, until it is stored or ctx ends.
func (in *instance) appendAgain(ctx context.Context, m *nats.Msg, seq uint64) error {
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		ack, err := in.h.js.PublishMsg(actx, m, jetstream.WithExpectLastSequence(seq-1))
		cancel()
		switch {
		case err == nil && ack.Sequence != seq:
			return fmt.Errorf("stored at %d, expected %d", ack.Sequence, seq)
		case err == nil:
			return nil
		case cluster.IsWrongLastSeq(err):
			return in.landed(ctx, m, seq, err)
		case !retryable(err) || ctx.Err() != nil || !pauseBeforeRetry(ctx, err):
			return err
		}
	}
}

// landed checks that the message at seq is m, sent by an earlier try: fenced is the
// refusal of the retry, returned when it is not.
func (in *instance) landed(ctx context.Context, m *nats.Msg, seq uint64, fenced error) error {
	if !in.leaseValid() {
		return fenced
	}
	st := in.log.handle
	var got *jetstream.RawStreamMsg
	var err error
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		got, err = st.GetMsg(actx, seq)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil || !pauseBeforeRetry(ctx, err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w (reading back seq %d: %v)", fenced, seq, err)
	}
	if !bytes.Equal(got.Data, m.Data) {
		return fmt.Errorf("%w (seq %d holds another message)", fenced, seq)
	}
	return nil
}
