package wsstream

// Redelivery for durable clients (client=<id>): messages delivered on a connection and
// not acknowledged within the redelivery timeout (redelivery=, default 30 s) are sent
// again, on the same connection, from the first unacknowledged seq on, in order. Acks are
// cumulative, so the oldest unacked message decides.
//
// Nothing is recorded per message: a timer of the subscription (no goroutine while it
// waits) samples, a few times per timeout, the highest seq delivered so far with the time. The
// oldest unacked seq was delivered no later than the first sample at or above it, so it
// is redelivered between one timeout and one timeout plus a sampling period after it was
// sent. Subscribers that are not durable have no redelivery and pay nothing for it.

import (
	"time"
)

// minRedeliveryTick bounds the sampling period, an eighth of the timeout (so a
// subscription holds at most about nine samples).
const minRedeliveryTick = 10 * time.Millisecond

// subRedelivery is one durable subscription's redelivery state, under s.mu.
type subRedelivery struct {
	timeout time.Duration
	timer   *time.Timer // set by start; re-armed by each sample while the subscription lasts
	// high is the highest seq ever delivered: an ack up to it is valid even after a
	// redelivery moved the subscription back.
	high    uint64
	samples []redeliverySample // oldest first; every one above the last ack
	// count is the number of redeliveries (each re-sends every unacked message).
	count int
}

type redeliverySample struct {
	high uint64 // every seq up to high had been delivered at
	at   time.Time
}

func newSubRedelivery(timeout time.Duration) *subRedelivery {
	return &subRedelivery{timeout: timeout}
}

func (rd *subRedelivery) period() time.Duration { return max(rd.timeout/8, minRedeliveryTick) }

// start arms the sampling timer of s (under s.mu; nothing without redelivery).
func (rd *subRedelivery) start(s *streamSub) {
	if rd != nil {
		rd.timer = time.AfterFunc(rd.period(), func() { s.checkRedelivery(time.Now()) })
	}
}

// stop stops the timer (after s.closed was set under s.mu, so a sample running now does
// not re-arm it).
func (rd *subRedelivery) stop() {
	if rd != nil && rd.timer != nil {
		rd.timer.Stop()
	}
}

// delivered is the highest seq an ack may name (under s.mu).
func (s *streamSub) delivered() uint64 {
	if s.rd != nil {
		return max(s.next-1, s.rd.high)
	}
	return s.next - 1
}

// ackedPast moves a subscription that was sent back by a redelivery past what the client has
// acknowledged since (under s.mu): those messages are not sent a third time.
func (s *streamSub) ackedPast(seq uint64) {
	if s.rd != nil && s.next <= seq {
		s.next = seq + 1
	}
}

// checkRedelivery samples the delivery position and, when the oldest unacknowledged
// message has waited past the timeout, sends every unacknowledged one again.
func (s *streamSub) checkRedelivery(now time.Time) {
	rd := s.rd
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if rd.timer != nil {
		defer rd.timer.Reset(rd.period()) // the next sample
	}
	rd.high = max(rd.high, s.next-1)
	if len(s.inflight) == 0 {
		rd.samples = rd.samples[:0]
		return
	}
	oldest := s.inflight[0]
	i := 0
	for i < len(rd.samples) && rd.samples[i].high < oldest {
		i++
	}
	rd.samples = append(rd.samples[:0], rd.samples[i:]...)
	if len(rd.samples) == 0 || rd.samples[len(rd.samples)-1].high < rd.high {
		rd.samples = append(rd.samples, redeliverySample{rd.high, now})
	}
	if now.Sub(rd.samples[0].at) < rd.timeout {
		return
	}
	// Back to the first unacknowledged seq: pump reads the stream from there again.
	rd.count++
	rd.samples = rd.samples[:0]
	s.next = s.acked + 1
	s.inflight = s.inflight[:0]
	s.pump()
}
