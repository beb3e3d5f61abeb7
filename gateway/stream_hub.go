package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamClass is the class of the objects behind durable streams (its contract is package
// builtin/stream/streamapi): the hosts must serve it when Options.Streams is set.
const StreamClass = streamapi.ClassName

// reservedStreamPrefix starts the Durable Streams subscription API's paths
// (/v1/stream/__ds/...), so no stream may be named under it.
const reservedStreamPrefix = "__ds/"

// validStreamName checks a stream name from any path (WebSocket, HTTP, durable-stream's
// subjects, fork sources): the object name grammar, and not under the reserved prefix.
func validStreamName(name string) error {
	if err := names.Validate(name); err != nil {
		return err
	}
	if name == strings.TrimSuffix(reservedStreamPrefix, "/") || strings.HasPrefix(name, reservedStreamPrefix) {
		return fmt.Errorf("stream names under %q are reserved for the subscription API", reservedStreamPrefix)
	}
	return nil
}

// StreamRetention limits the streams whose names match Pattern: tokens separated by "/",
// "*" matching one token and a last ">" one or more. Zero is no limit.
type StreamRetention struct {
	Pattern  string
	MaxMsgs  int64
	MaxBytes int64
	MaxAge   time.Duration
}

// matchPattern reports whether stream name matches a retention pattern.
func matchPattern(pattern, name string) bool {
	p, n := strings.Split(pattern, "/"), strings.Split(name, "/")
	for i, tok := range p {
		if tok == ">" && i == len(p)-1 {
			return len(n) > i
		}
		if i >= len(n) || tok != "*" && tok != n[i] {
			return false
		}
	}
	return len(n) == len(p)
}

// streamHub holds, per stream name, the one upstream this gateway reads for all its local
// subscribers.
type streamHub struct {
	g       *Gateway
	started time.Time
	mu      sync.Mutex
	ups     map[string]*upstream
	// slowClosed counts connections closed as slow consumers.
	slowClosed atomic.Int64

	lingerOnce sync.Once
	lingerMu   sync.Mutex
	lingerCh   chan struct{} // closed and replaced every writerLinger
}

// writerLinger is the tick of the clock idle stream writers wait on before they exit.
const writerLinger = 500 * time.Millisecond

// lingerTick is a channel closed at the clock's next tick. One goroutine per gateway
// ticks it (until the gateway closes), instead of a timer per lingering writer.
func (h *streamHub) lingerTick() <-chan struct{} {
	h.lingerOnce.Do(func() {
		h.lingerCh = make(chan struct{})
		go func() {
			t := time.NewTicker(writerLinger)
			defer t.Stop()
			for {
				select {
				case <-h.g.ctx.Done():
					return
				case <-t.C:
				}
				h.lingerMu.Lock()
				close(h.lingerCh)
				h.lingerCh = make(chan struct{})
				h.lingerMu.Unlock()
			}
		}()
	})
	h.lingerMu.Lock()
	defer h.lingerMu.Unlock()
	return h.lingerCh
}

func newStreamHub(g *Gateway) *streamHub {
	return &streamHub{g: g, started: time.Now(), ups: map[string]*upstream{}}
}

// upstream is one stream's shared live feed: an ordered consumer on the stream's JetStream
// stream from the tail at the time it started. Each stored message is encoded into its
// frame once and handed to every subscriber that is live (caught up and within its
// window). Subscribers behind it read the stream themselves up to up.last, then join.
type upstream struct {
	hub           *streamHub
	name, subject string
	prefix        []byte
	ready         chan struct{}
	err           error
	refs          int // under hub.mu
	js            jetstream.Stream
	cc            jetstream.ConsumeContext

	mu   sync.Mutex
	last uint64 // highest seq handed out to live subscribers
	subs map[*streamSub]struct{}
	// watchers are poked (never blocking) after each live message: readers that keep their
	// own position (durable-stream compatibility, consumer groups) wait on them instead of
	// polling.
	watchers map[chan struct{}]struct{}
}

// watch registers ch to be poked after each live message; unwatch removes it.
func (up *upstream) watch(ch chan struct{}) {
	up.mu.Lock()
	if up.watchers == nil {
		up.watchers = map[chan struct{}]struct{}{}
	}
	up.watchers[ch] = struct{}{}
	up.mu.Unlock()
}

func (up *upstream) unwatch(ch chan struct{}) {
	up.mu.Lock()
	delete(up.watchers, ch)
	up.mu.Unlock()
}

// tail is the highest seq the live feed has seen.
func (up *upstream) tail() uint64 {
	up.mu.Lock()
	defer up.mu.Unlock()
	return up.last
}

// acquire returns the started upstream of name, starting it on first use.
func (h *streamHub) acquire(ctx context.Context, name string) (*upstream, error) {
	h.mu.Lock()
	up := h.ups[name]
	if up == nil {
		nameJSON, _ := json.Marshal(name)
		up = &upstream{hub: h, name: name, subject: wire.LogSubject(StreamClass, name), ready: make(chan struct{}),
			subs: map[*streamSub]struct{}{}, prefix: []byte(`{"type":"message","stream":` + string(nameJSON) + `,"seq":`)}
		h.ups[name] = up
		up.refs++
		h.mu.Unlock()
		up.err = up.start()
		close(up.ready)
	} else {
		up.refs++
		h.mu.Unlock()
	}
	select {
	case <-up.ready:
	case <-ctx.Done():
		h.release(up)
		return nil, ctx.Err()
	}
	if up.err != nil {
		h.release(up)
		return nil, up.err
	}
	return up, nil
}

// release drops one reference; the last one stops the upstream.
func (h *streamHub) release(up *upstream) {
	h.mu.Lock()
	up.refs--
	last := up.refs == 0
	if last && h.ups[up.name] == up {
		delete(h.ups, up.name)
	}
	h.mu.Unlock()
	if last {
		<-up.ready
		if up.cc != nil {
			up.cc.Stop()
		}
	}
}

// retention is the configured retention of stream name: the first matching pattern's.
func (h *streamHub) retention(name string) StreamRetention {
	for _, r := range h.g.opts.StreamRetention {
		if matchPattern(r.Pattern, name) {
			return r
		}
	}
	return StreamRetention{}
}

// start makes the stream object create its log (and apply retention), then reads the log's
// tail and starts the live feed right after it.
func (up *upstream) start() error {
	g := up.hub.g
	ctx, cancel := context.WithTimeout(g.ctx, g.opts.RequestTimeout)
	defer cancel()
	r := up.hub.retention(up.name)
	if _, err := g.sc.Configure(ctx, up.name, streamapi.Config{MaxMsgs: r.MaxMsgs, MaxBytes: r.MaxBytes, MaxAgeMs: r.MaxAge.Milliseconds()}); err != nil {
		return err
	}
	st, err := g.js.Stream(ctx, wire.LogStream(StreamClass, up.name))
	if err != nil {
		return fmt.Errorf("stream %q: %w", up.name, err)
	}
	up.js = st
	up.last = st.CachedInfo().State.LastSeq
	cons, err := g.js.OrderedConsumer(ctx, st.CachedInfo().Config.Name, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: up.last + 1,
	})
	if err != nil {
		return fmt.Errorf("stream %q: consumer: %w", up.name, err)
	}
	up.cc, err = cons.Consume(up.onMsg, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		g.log.Debug("stream feed", "stream", up.name, "err", err)
	}))
	if err != nil {
		return fmt.Errorf("stream %q: consume: %w", up.name, err)
	}
	return nil
}

// info reads a stream's retained range from JetStream itself, which applies retention
// limits the object does not see: firstSeq > lastSeq when it holds no message.
func (h *streamHub) info(ctx context.Context, name string) (first, last uint64, err error) {
	st, err := h.g.js.Stream(ctx, wire.LogStream(StreamClass, name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: err.Error()}
	}
	s := st.CachedInfo().State
	if s.Msgs == 0 {
		return s.LastSeq + 1, s.LastSeq, nil
	}
	return s.FirstSeq, s.LastSeq, nil
}

// encode builds a message frame; it is built once per message and shared.
func (up *upstream) encode(seq uint64, t time.Time, data []byte) []byte {
	b := make([]byte, 0, len(up.prefix)+len(data)+64)
	b = append(b, up.prefix...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	if json.Valid(data) {
		b = append(b, data...)
	} else {
		q, _ := json.Marshal(string(data))
		b = append(b, q...)
	}
	return append(b, '}')
}

// frame is a stored message's frame after the Transform hook, or nil when the hook drops
// it: transformed once, encoded once.
func (up *upstream) frame(seq uint64, t time.Time, data []byte) []byte {
	data, keep := up.hub.g.transform(up.name, seq, data)
	if !keep {
		return nil
	}
	return up.encode(seq, t, data)
}

// onMsg is the live feed: in seq order, one message at a time.
func (up *upstream) onMsg(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	seq := md.Sequence.Stream
	up.mu.Lock()
	defer up.mu.Unlock()
	if seq <= up.last {
		return // a restarted consumer's repeat
	}
	// Stored to here, once per live message per gateway (the subscribers' writes follow).
	up.hub.g.metrics.PublishDeliver.Observe(time.Since(md.Timestamp).Seconds())
	var f []byte
	if up.anyLive() {
		// Transform and encode outside the lock, as before; a subscriber that went live
		// meanwhile gets the frame below.
		up.mu.Unlock()
		f = up.frame(seq, md.Timestamp, m.Data())
		up.mu.Lock()
		if seq <= up.last {
			return // feeds do not overlap; if one ever did, the first one won
		}
	}
	// With no live subscriber the frame is not built: a stream that is published to and
	// read by no one here (a publisher's own connection) skipped it. Whoever goes live
	// later reads up to up.last itself, and up.last moves in the same critical section as
	// this check.
	up.last = seq
	for s := range up.subs {
		if s.live {
			s.offerLive(seq, f)
		}
	}
	for ch := range up.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// anyLive reports whether a subscriber takes the live feed (under up.mu).
func (up *upstream) anyLive() bool {
	for s := range up.subs {
		if s.live {
			return true
		}
	}
	return false
}

// subscribers is the number of local subscribers.
func (up *upstream) subscribers() int {
	up.mu.Lock()
	defer up.mu.Unlock()
	return len(up.subs)
}

type storedMsg struct {
	seq   uint64
	frame []byte // nil: dropped by the Transform hook
}

// read returns up to max stored messages with seqs in [from, to], in order; done is true
// when it scanned the whole range (nothing else stored in it).
func (up *upstream) read(ctx context.Context, from, to uint64, max int) (out []storedMsg, done bool, err error) {
	for cur := from; cur <= to; {
		if len(out) >= max {
			return out, false, nil
		}
		m, err := up.js.GetMsg(ctx, cur, jetstream.WithGetMsgSubject(up.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, true, nil
		}
		if err != nil {
			return out, false, err
		}
		if m.Sequence > to {
			return out, true, nil
		}
		out = append(out, storedMsg{m.Sequence, up.frame(m.Sequence, m.Time, m.Data)})
		cur = m.Sequence + 1
	}
	return out, true, nil
}

// streamSub is one connection's subscription to one stream. It is live while it keeps up
// with the upstream's feed; otherwise its own goroutine (run) reads the stream from next
// until it reaches the feed's position, and joins it under up.mu, so that nothing is
// missed or repeated at the handover.
type streamSub struct {
	conn   *streamConn
	up     *upstream
	name   string
	window int

	// under up.mu
	next     uint64   // next seq the client needs
	live     bool     // fed by the upstream
	inflight []uint64 // delivered, not acknowledged
	acked    uint64
	closed   bool
	running  bool           // run's goroutine is started
	rd       *subRedelivery // a durable client's redelivery (stream_redelivery.go), or nil
}

// poke starts run unless it runs (under up.mu): a subscriber off the feed with room in
// its window catches up. A running run sees every change made under up.mu before it exits,
// so a live or idle subscriber has no goroutine. A closed one never starts one: closeSubs
// closes them all before the connection's wg.Wait.
func (s *streamSub) poke() {
	if s.running || s.closed {
		return
	}
	s.running = true
	s.conn.wg.Add(1)
	go func() { defer s.conn.wg.Done(); s.run() }()
}

// deliver queues one message (under up.mu); a nil frame (dropped by the Transform hook)
// only moves the subscriber past seq.
func (s *streamSub) deliver(seq uint64, f []byte) {
	if seq > s.next {
		s.conn.gap(s.name, s.next, seq)
	}
	s.next = seq + 1
	if f == nil {
		return
	}
	s.inflight = append(s.inflight, seq)
	s.conn.enqueue(f)
	s.conn.g.metrics.MessagesOut.WithLabelValues(wire.ConnStreamSocket).Inc()
}

// offerLive hands a live subscriber the feed's next message (under up.mu). With its window
// full it leaves the feed and catches up later by reading.
func (s *streamSub) offerLive(seq uint64, f []byte) {
	if seq < s.next {
		return
	}
	if f != nil && len(s.inflight) >= s.window {
		s.live = false
		s.poke()
		return
	}
	s.deliver(seq, f)
}

// ack records a cumulative ack; it returns an error message when seq was never delivered.
func (s *streamSub) ack(seq uint64) string {
	up := s.up
	up.mu.Lock()
	defer up.mu.Unlock()
	if seq > s.delivered() {
		return fmt.Sprintf("seq %d was not delivered yet (next is %d)", seq, s.delivered()+1)
	}
	if seq <= s.acked {
		return ""
	}
	s.acked = seq
	full := len(s.inflight) >= s.window
	i := 0
	for i < len(s.inflight) && s.inflight[i] <= seq {
		i++
	}
	s.inflight = append(s.inflight[:0], s.inflight[i:]...)
	s.ackedPast(seq)
	if full && !s.live {
		s.poke()
	}
	return ""
}

// run catches the subscriber up by reading the stream, then joins the live feed and exits;
// poke starts it again whenever the subscriber falls off the feed, or its window, full,
// gets room.
func (s *streamSub) run() {
	up, ctx := s.up, s.conn.ctx
	for {
		up.mu.Lock()
		room := s.window - len(s.inflight)
		if s.closed || s.live || room <= 0 || ctx.Err() != nil {
			s.running = false
			up.mu.Unlock()
			return
		}
		from, to := s.next, up.last
		if from > to {
			s.live = true // caught up: the feed's next message is ours
			up.mu.Unlock()
			continue
		}
		up.mu.Unlock()
		msgs, done, err := up.read(ctx, from, to, min(room, 256))
		if err != nil {
			if ctx.Err() == nil {
				s.conn.g.log.Warn("stream replay failed", "stream", s.name, "err", err)
				s.conn.fail(CloseStreamUnavailable, "reading the stream failed; reconnect")
			}
			return
		}
		up.mu.Lock()
		if s.closed || s.live || s.next != from {
			up.mu.Unlock()
			continue
		}
		for _, m := range msgs {
			s.deliver(m.seq, m.frame)
		}
		if done && s.next <= to {
			s.conn.gap(s.name, s.next, to+1)
			s.next = to + 1
		}
		up.mu.Unlock()
	}
}
