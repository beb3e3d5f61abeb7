// Package feed is the gateway's one read of each stream's log. Per stream and gateway it
// keeps one JetStream ordered consumer, started at the log's tail when the first local
// reader comes, and a bounded ring of the messages delivered since. Every local reader —
// a WebSocket subscriber, a durable-stream client, a group member, an EventSource, a
// long-poll, an SSE response — keeps its own position and reads the ring from there;
// listeners hear of each new message, in seq order, on the consumer's goroutine. Only a
// reader further behind than the ring reads the log itself, in batches (JetStream's
// batched direct get), never one message per request.
//
// What a message is encoded into (a WebSocket frame, an SSE event) is kept on the message
// per Codec, so that each encoding is built once per gateway however many readers send it.
//
// The package knows nothing of the protocols: the gateway names each stream's log
// (Config.Log), makes sure it exists before a feed starts (Config.Open), and brings the
// codecs.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	// DefaultRingMsgs and DefaultRingBytes bound each feed's ring: the most recent messages
	// up to 4,096 or 4 MiB (data, headers and the encodings built of them), whichever is
	// reached first.
	DefaultRingMsgs  = 4096
	DefaultRingBytes = 4 << 20
	// DefaultLinger is how long a feed nobody reads is kept (with its consumer and ring) for
	// the next reader: a long-poll's next request, a reconnecting client.
	DefaultLinger = 30 * time.Second
)

// Config configures a Hub.
type Config struct {
	JetStream jetstream.JetStream
	// Conn carries the batched history reads (the JetStream connection's).
	Conn *nats.Conn
	// Log names the JetStream stream and subject of a stream's log.
	Log func(name string) (stream, subject string)
	// Open is called before a feed starts: it makes sure the stream's log exists and is
	// configured (the gateway asks the stream's object).
	Open func(ctx context.Context, name string) error
	// RingMsgs and RingBytes bound each feed's ring (defaults above).
	RingMsgs, RingBytes int
	// Linger keeps an unused feed this long (DefaultLinger; negative: stop at once).
	Linger time.Duration
	// StartTimeout bounds a feed's start (Open, the log's tail, the consumer); default 30 s.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// maxCodecs bounds the codecs of one hub (one per protocol the gateway speaks).
const maxCodecs = 8

// Hub holds a gateway's feeds, one per stream read here.
type Hub struct {
	cfg    Config
	ctx    context.Context
	codecs atomic.Int32

	mu    sync.Mutex
	feeds map[string]*Feed
}

// NewHub makes a hub; its feeds stop when ctx ends.
func NewHub(ctx context.Context, cfg Config) *Hub {
	if cfg.RingMsgs <= 0 {
		cfg.RingMsgs = DefaultRingMsgs
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = DefaultRingBytes
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Hub{cfg: cfg, ctx: ctx, feeds: map[string]*Feed{}}
}

// A Codec encodes messages for one protocol. Each message is encoded by it at most once
// (two first uses at the same time may both encode; one result is kept for all).
type Codec struct {
	id     int32
	encode func(*Msg) []byte
}

// Codec registers an encoding; a hub takes at most 8. encode returns nil to send nothing
// for a message (a hook dropped it); that answer is kept too.
func (h *Hub) Codec(encode func(*Msg) []byte) *Codec {
	id := h.codecs.Add(1) - 1
	if id >= maxCodecs {
		panic("feed: more than 8 codecs on one hub")
	}
	return &Codec{id: id, encode: encode}
}

// Msg is one stored message of a stream's log, shared read-only by every reader.
type Msg struct {
	Stream string // the stream's name
	Seq    uint64
	Time   time.Time
	Header nats.Header // the message's own headers (nil when none)
	Data   []byte

	enc  [maxCodecs]atomic.Pointer[[]byte]
	acct atomic.Pointer[atomic.Int64] // the ring's byte count while the message is in a ring
}

// Encoded is m encoded by c, built on first use.
func (m *Msg) Encoded(c *Codec) []byte {
	if p := m.enc[c.id].Load(); p != nil {
		return *p
	}
	b := c.encode(m)
	if m.enc[c.id].CompareAndSwap(nil, &b) {
		if n := m.acct.Load(); n != nil {
			n.Add(int64(len(b)))
		}
		return b
	}
	return *m.enc[c.id].Load()
}

// cost is what m holds, without its encodings.
func (m *Msg) cost() int64 {
	n := int64(len(m.Data)) + msgOverhead
	for k, vs := range m.Header {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// msgOverhead is what a message costs beyond its data and headers (the struct and its
// slot), for the ring's byte bound.
const msgOverhead = 160

// A Listener hears of each message a feed delivers, in seq order, on the feed's goroutine,
// with no lock of the feed held. It must not block: it queues, or wakes a goroutine.
type Listener interface {
	Appended(m *Msg)
}

// Feed is one stream's read on this gateway.
type Feed struct {
	logRef
	ready chan struct{}
	err   error

	// under hub.mu
	refs    int
	linger  *time.Timer
	stopped bool

	cc       jetstream.ConsumeContext
	stopHook func() bool // unregisters the stop at the hub's end

	mu      sync.RWMutex
	ring    ring
	last    uint64        // the highest seq delivered
	changed chan struct{} // closed at the next message; made on demand
	size    atomic.Int64  // bytes the ring holds (messages and their encodings)

	lmu       sync.RWMutex
	listeners []Listener
	lindex    map[Listener]int
}

// Acquire returns name's feed, started: its log opened, its consumer running from the tail
// the log had then. The caller calls Release when it is done with it.
func (h *Hub) Acquire(ctx context.Context, name string) (*Feed, error) {
	h.mu.Lock()
	f := h.feeds[name]
	if f == nil {
		stream, subject := h.cfg.Log(name)
		f = &Feed{logRef: logRef{hub: h, name: name, stream: stream, subject: subject}, ready: make(chan struct{}), lindex: map[Listener]int{}}
		f.ring.init()
		h.feeds[name] = f
		f.refs++
		h.mu.Unlock()
		f.err = f.start()
		close(f.ready)
		if f.err != nil {
			h.mu.Lock()
			if h.feeds[name] == f {
				delete(h.feeds, name)
			}
			f.stopped = true
			h.mu.Unlock()
		}
	} else {
		f.refs++
		if f.linger != nil {
			f.linger.Stop()
			f.linger = nil
		}
		h.mu.Unlock()
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		f.Release()
		return nil, ctx.Err()
	}
	if f.err != nil {
		f.Release()
		return nil, f.err
	}
	return f, nil
}

// Running returns name's feed when one is started, without acquiring it (nil otherwise).
func (h *Hub) Running(name string) *Feed {
	h.mu.Lock()
	f := h.feeds[name]
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.ready:
		if f.err == nil {
			return f
		}
	default:
	}
	return nil
}

// Release drops one reference; the feed stops once unused for the hub's linger.
func (f *Feed) Release() {
	h := f.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	f.refs--
	if f.refs > 0 || f.stopped {
		return
	}
	if h.cfg.Linger < 0 || f.err != nil {
		f.stopLocked()
		return
	}
	f.linger = time.AfterFunc(h.cfg.Linger, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if f.refs == 0 && !f.stopped {
			f.stopLocked()
		}
	})
}

// stopLocked stops the consumer (under hub.mu, once ready).
func (f *Feed) stopLocked() {
	f.stopped = true
	if f.hub.feeds[f.name] == f {
		delete(f.hub.feeds, f.name)
	}
	go func() {
		<-f.ready
		if f.cc != nil {
			f.cc.Stop()
		}
		if f.stopHook != nil {
			f.stopHook() // a stopped feed is not kept for the hub's end
		}
	}()
}

// Name is the stream's name.
func (f *Feed) Name() string { return f.name }

// start opens the log, reads its tail and starts the consumer right after it.
func (f *Feed) start() error {
	h := f.hub
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.StartTimeout)
	defer cancel()
	if h.cfg.Open != nil {
		if err := h.cfg.Open(ctx, f.name); err != nil {
			return err
		}
	}
	st, err := h.cfg.JetStream.Stream(ctx, f.stream)
	if err != nil {
		return fmt.Errorf("stream %q: %w", f.name, err)
	}
	state := st.CachedInfo().State
	last := state.LastSeq
	f.last = last
	f.ring.start = last + 1
	if err := f.prefill(ctx, max(state.FirstSeq, last+1-min(uint64(prefillMsgs), last)), last); err != nil {
		return err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1,
		// The server reaps the consumer soon after it is stopped (or this gateway dies).
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("stream %q: consumer: %w", f.name, err)
	}
	f.cc, err = cons.Consume(f.onMsg, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrConsumerDeleted) && h.ctx.Err() == nil {
			h.cfg.Logger.Debug("stream feed", "stream", f.name, "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("stream %q: consume: %w", f.name, err)
	}
	f.stopHook = context.AfterFunc(h.ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !f.stopped {
			f.stopLocked()
		}
	})
	return nil
}

// prefillMsgs is how many of the log's last messages a feed reads into its ring when it
// starts (one batched read), so that the readers who start at or near the tail — a new
// EventSource from the start of a short stream, a client resuming after a reconnect —
// read the ring and not the log, each on its own.
const prefillMsgs = 256

// prefill reads the log's messages from..last into the ring, before the consumer starts.
func (f *Feed) prefill(ctx context.Context, from, last uint64) error {
	if from > last || from == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring.start = from
	for from <= last {
		msgs, next, err := f.fetch(ctx, from, last, fetchMax)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			f.pushLocked(m)
		}
		if next <= from {
			break
		}
		from = next
	}
	return nil
}

// onMsg is the consumer's delivery: in seq order, one message at a time.
func (f *Feed) onMsg(jm jetstream.Msg) {
	md, err := jm.Metadata()
	if err != nil {
		return
	}
	m := &Msg{Stream: f.name, Seq: md.Sequence.Stream, Time: md.Timestamp, Data: jm.Data()}
	if h := jm.Headers(); len(h) > 0 {
		m.Header = h
	}
	f.append(m)
}

// append adds m to the ring and tells the listeners.
func (f *Feed) append(m *Msg) {
	f.mu.Lock()
	if m.Seq <= f.last {
		f.mu.Unlock()
		return // a restarted consumer's repeat
	}
	f.pushLocked(m)
	f.last = m.Seq
	ch := f.changed
	f.changed = nil
	f.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	f.lmu.RLock()
	for _, l := range f.listeners {
		l.Appended(m)
	}
	f.lmu.RUnlock()
}

// pushLocked adds m to the ring, dropping the oldest messages past its bounds (under mu).
func (f *Feed) pushLocked(m *Msg) {
	m.acct.Store(&f.size)
	f.size.Add(m.cost())
	f.ring.push(m)
	for f.ring.len() > 0 && (f.ring.len() > f.hub.cfg.RingMsgs || f.size.Load() > int64(f.hub.cfg.RingBytes)) {
		old := f.ring.pop()
		old.acct.Store(nil)
		f.size.Add(-old.footprint())
	}
}

// footprint is what m counts for in the ring: itself and its encodings.
func (m *Msg) footprint() int64 {
	n := m.cost()
	for i := range m.enc {
		if p := m.enc[i].Load(); p != nil {
			n += int64(len(*p))
		}
	}
	return n
}

// Listen adds l; it hears of every message delivered after Listen returns. Unlisten
// removes it; once Unlisten returns, l hears of nothing more.
func (f *Feed) Listen(l Listener) {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	if _, ok := f.lindex[l]; ok {
		return
	}
	f.lindex[l] = len(f.listeners)
	f.listeners = append(f.listeners, l)
}

// Unlisten removes l (see Listen).
func (f *Feed) Unlisten(l Listener) {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	i, ok := f.lindex[l]
	if !ok {
		return
	}
	last := len(f.listeners) - 1
	moved := f.listeners[last]
	f.listeners[i] = moved
	f.lindex[moved] = i
	f.listeners[last] = nil
	f.listeners = f.listeners[:last]
	delete(f.lindex, l)
}

// Each calls fn for every listener (on the caller's goroutine, with the listeners locked:
// fn must not call Listen or Unlisten).
func (f *Feed) Each(fn func(Listener)) {
	f.lmu.RLock()
	defer f.lmu.RUnlock()
	for _, l := range f.listeners {
		fn(l)
	}
}

// Listeners is the number of listeners.
func (f *Feed) Listeners() int {
	f.lmu.RLock()
	defer f.lmu.RUnlock()
	return len(f.listeners)
}

// Last is the highest seq the feed has delivered: every stored message up to it is in
// the ring, or older than the ring (Read reads it from the log), or deleted.
func (f *Feed) Last() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.last
}

// Changed is a channel closed at the next message the feed delivers after the call.
func (f *Feed) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

// Cached appends to dst up to max messages with seqs from from on, as far as the ring
// holds them, and returns the seq to read from next (past the last message returned, or
// past Last when nothing after from is stored). ok is false, and nothing is returned,
// when from is before the ring: the caller reads the log (Read).
func (f *Feed) Cached(dst []*Msg, from uint64, max int) (msgs []*Msg, next uint64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if from < f.ring.start {
		return dst, from, false
	}
	return f.cachedLocked(dst, from, f.last, max)
}

// cachedLocked reads the ring from from up to seq upTo (<= last), under mu.
func (f *Feed) cachedLocked(dst []*Msg, from, upTo uint64, max int) ([]*Msg, uint64, bool) {
	next := from
	for i := f.ring.search(from); i < f.ring.len() && max > 0; i++ {
		m := f.ring.at(i)
		if m.Seq > upTo {
			break
		}
		dst = append(dst, m)
		next = m.Seq + 1
		max--
	}
	if max > 0 && next <= upTo {
		next = upTo + 1 // nothing else is stored up to upTo
	}
	return dst, next, true
}

// Read returns up to max messages with seqs from from to Last, in order: from the ring,
// or, for those older than the ring, from the log in one batched read. next is the seq to
// read from next: past the returned messages and past any seqs found empty (deleted)
// after them. Fewer than max messages with next <= Last means there is more to read.
func (f *Feed) Read(ctx context.Context, from uint64, max int) (msgs []*Msg, next uint64, err error) {
	return f.ReadRange(ctx, from, 0, max)
}

// ReadRange is Read up to seq upTo, which may be past Last (a seq the caller knows is
// stored, which the feed has not delivered yet: it is read from the log); 0 is Last.
func (f *Feed) ReadRange(ctx context.Context, from, upTo uint64, max int) (msgs []*Msg, next uint64, err error) {
	f.mu.RLock()
	if upTo == 0 {
		upTo = f.last
	}
	if from >= f.ring.start && from <= f.last {
		last := f.last
		msgs, next, _ = f.cachedLocked(nil, from, min(upTo, last), max)
		f.mu.RUnlock()
		if next <= upTo && len(msgs) < max {
			// The caller knows of seqs the feed has not delivered yet (an append the
			// object acknowledged a moment ago): the rest of the range from the log, so
			// that a read after a write sees it.
			more, after, err := f.fetch(ctx, next, upTo, max-len(msgs))
			if err != nil {
				return nil, from, err
			}
			msgs, next = append(msgs, more...), after
		}
		return msgs, next, nil
	}
	if from < f.ring.start {
		upTo = min(upTo, f.ring.start-1)
	}
	f.mu.RUnlock()
	return f.fetch(ctx, from, upTo, max)
}

// Trim drops what the ring holds before seq first: the log holds nothing before it any
// more (a delete or a checkpoint), and readers must not be served what it dropped.
func (f *Feed) Trim(first uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.ring.len() > 0 && f.ring.at(0).Seq < first {
		old := f.ring.pop()
		old.acct.Store(nil)
		f.size.Add(-old.footprint())
	}
	f.ring.start = max(f.ring.start, first)
}

// RingStart is the first seq the ring may hold: older messages are read from the log.
func (f *Feed) RingStart() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.ring.start
}
