package wsstream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/feed"
)

// streamSub is one connection's subscription to one stream: a reader of the stream's feed
// at its own position, next. A message reaches it in one of two ways, both under mu:
//
//   - at the head, the feed hands it each new message (Appended) and it queues the frame
//     while its window has room;
//   - behind the head (its window was full, it started in the past, it was sent back by a
//     redelivery), pump reads the feed's ring from next: at once when an ack opens the
//     window, no timer and no goroutine in between.
//
// Only a subscriber further behind than the ring starts a goroutine of its own (fetch),
// which reads the log in batches until it reaches the ring, then exits. An idle or live
// subscriber has no goroutine.
type streamSub struct {
	conn   *streamConn
	feed   *feed.Feed
	name   string
	window int

	mu       sync.Mutex
	next     uint64   // next seq the client needs
	inflight []uint64 // delivered, not acknowledged, in order
	acked    uint64
	closed   bool
	fetching bool           // fetch's goroutine reads the log
	rd       *subRedelivery // a durable client's redelivery (redelivery.go), or nil
	scratch  []*feed.Msg
}

var _ feed.Listener = (*streamSub)(nil)

// pumpBatch bounds the messages one pump or fetch step takes.
const pumpBatch = 256

func (s *streamSub) room() int { return s.window - len(s.inflight) }

// Appended is the feed's news of a message.
func (s *streamSub) Appended(m *feed.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.fetching || m.Seq < s.next {
		return
	}
	if m.Seq == s.next && s.room() > 0 {
		s.deliver(m) // at the head: the usual case
		s.conn.g.metrics.PublishDeliver.Observe(time.Since(m.Time).Seconds())
		return
	}
	s.pump()
}

// deliver queues one message (under mu); one the Transform hook dropped only moves the
// subscriber past it.
func (s *streamSub) deliver(m *feed.Msg) {
	if m.Seq > s.next {
		s.conn.gap(s.name, s.next, m.Seq)
	}
	s.next = m.Seq + 1
	f := m.Encoded(s.conn.g.codecs.msgFrame)
	if f == nil {
		return
	}
	s.inflight = append(s.inflight, m.Seq)
	s.conn.enqueue(f)
}

// skipTo moves the subscriber to next when nothing is stored before it (under mu).
func (s *streamSub) skipTo(next uint64) {
	if next > s.next {
		s.conn.gap(s.name, s.next, next)
		s.next = next
	}
}

// pump delivers from the ring while the window has room (under mu), and while the
// connection's queue has room: reading back is paced by the client, and resumes when the
// queue drained (streamConn.drained). A subscriber behind the ring gets its fetch goroutine.
func (s *streamSub) pump() {
	for !s.closed && !s.fetching && s.room() > 0 {
		msgs, next, ok := s.feed.Cached(s.scratch[:0], s.next, min(s.room(), pumpBatch))
		if !ok {
			s.startFetch()
			return
		}
		paused := !s.deliverPaced(msgs)
		clear(msgs)
		s.scratch = msgs[:0]
		if paused {
			return
		}
		s.skipTo(next)
		if len(msgs) == 0 {
			return // at the head
		}
	}
}

// deliverPaced delivers msgs while the connection's queue has room for them; false: it
// stopped for room, and the queue's drain pumps again.
func (s *streamSub) deliverPaced(msgs []*feed.Msg) bool {
	q := s.conn.conn
	room := q.Room()
	for _, m := range msgs {
		if f := m.Encoded(s.conn.g.codecs.msgFrame); f != nil {
			need := len(f) + 16
			if need > room && q.Queued() > 0 {
				q.WantDrain()
				return false
			}
			room -= need
		}
		s.deliver(m)
	}
	return true
}

// startFetch starts the goroutine reading the log (under mu). A closed subscription never
// starts one: closeSubs closes them all before the connection's wg.Wait.
func (s *streamSub) startFetch() {
	s.fetching = true
	s.conn.wg.Add(1)
	go func() { defer s.conn.wg.Done(); s.fetch() }()
}

// fetch reads the log from next in batches while the window has room, until the
// subscriber reaches the ring, which pump reads from then on.
func (s *streamSub) fetch() {
	ctx := s.conn.ctx
	for {
		s.mu.Lock()
		if s.closed || ctx.Err() != nil || s.room() <= 0 {
			s.fetching = false // an ack pumps again
			s.mu.Unlock()
			return
		}
		from, room := s.next, s.room()
		if from >= s.feed.RingStart() {
			s.fetching = false
			s.pump()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		msgs, next, err := s.feed.Read(ctx, from, min(room, pumpBatch))
		s.mu.Lock()
		if err != nil {
			s.fetching = false
			s.mu.Unlock()
			if ctx.Err() == nil {
				s.conn.g.log.Warn("stream replay failed", "stream", s.name, "err", err)
				s.conn.Fail(CloseStreamUnavailable, "reading the stream failed; reconnect")
			}
			return
		}
		if !s.closed && s.next == from { // else moved meanwhile (an ack past it, a redelivery)
			if !s.deliverPaced(msgs) {
				s.fetching = false // the queue's drain pumps (and fetches) again
				s.mu.Unlock()
				return
			}
			s.skipTo(next)
		}
		s.mu.Unlock()
	}
}

// ack records a cumulative ack and resumes delivery when it opened the window; it returns
// an error message when seq was never delivered.
func (s *streamSub) ack(seq uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.delivered() {
		return fmt.Sprintf("seq %d was not delivered yet (next is %d)", seq, s.delivered()+1)
	}
	if seq <= s.acked {
		return ""
	}
	s.acked = seq
	i := 0
	for i < len(s.inflight) && s.inflight[i] <= seq {
		i++
	}
	s.inflight = append(s.inflight[:0], s.inflight[i:]...)
	s.ackedPast(seq)
	s.pump()
	return ""
}

// start begins delivery once the subscription is registered: the feed's news from now on,
// and what the ring (or the log) holds from next (under nothing; it takes mu).
func (s *streamSub) start() {
	s.feed.Listen(s)
	s.mu.Lock()
	s.rd.start(s)
	s.pump()
	s.mu.Unlock()
}

func (s *streamSub) stop() {
	s.mu.Lock()
	s.closed = true // a running fetch sees it and exits
	s.mu.Unlock()
	s.feed.Unlisten(s) // not under mu: the feed may be telling s of a message now
	s.rd.stop()
	s.feed.Release()
}

// position is the next seq the subscriber will be sent.
func (s *streamSub) position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// checkRetained checks a replay that the ring would serve against the stream's retained
// range: the ring may still hold messages a delete or retention removed since it kept
// them, and it drops those. A replay from before the ring reads the log itself.
func (c *streamConn) checkRetained(ctx context.Context, f *feed.Feed, name string, from uint64) error {
	if from > f.Last() || from < f.RingStart() {
		return nil
	}
	first, _, err := c.g.streams.Info(ctx, name)
	if err != nil {
		return err
	}
	f.Trim(first)
	return nil
}
