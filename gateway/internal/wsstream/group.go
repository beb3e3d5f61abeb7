package wsstream

// Consumer groups on /v1/stream/{name}?group=<g>: each message goes to one member of the
// group. The stream object keeps the group's state (builtin/stream, group.go): the next
// seq never handed out and the claims in flight with their deadlines. A member's
// connection claims seqs up to its window, reads those messages from JetStream by seq,
// and sends the object the seqs the client acked. A claim not acked by its deadline
// (redelivery=, default 30 s) goes to whichever member claims next; a member that
// disconnects releases its claims at once.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/nats-io/nuid"
)

// Redelivery timeout bounds.
const (
	minRedelivery     = 100 * time.Millisecond
	maxRedelivery     = time.Hour
	defaultRedelivery = 30 * time.Second
	// groupMaxWait bounds a member's wait between claims while the group has claims in
	// flight: a member on another gateway may release its claims early (on disconnect),
	// and only members on the same gateway are woken by that.
	groupMaxWait = time.Second
	// groupRetryFor bounds how long a member keeps asking a stream object that does not
	// answer (its host failing over) before it closes the connection with 1013.
	groupRetryFor = 30 * time.Second
)

// streamGroup is one member's connection to a group. It listens to the stream's feed to
// hear of new messages to claim; it reads the messages it claimed from the feed.
type streamGroup struct {
	c                   *streamConn
	feed                *feed.Feed
	name, group, member string
	timeout             time.Duration
	wake                chan struct{}
	mu                  sync.Mutex
	inflight            map[uint64]struct{} // delivered, not acked
	acked               []uint64            // acked, not yet told to the object
}

func (g *Server) serveStreamGroup(w http.ResponseWriter, r *http.Request, c *streamConn, group string, timeout time.Duration) {
	if timeout == 0 {
		timeout = defaultRedelivery
	}
	member := c.client
	if member == "" {
		member = nuid.Next()
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.RequestTimeout)
	f, err := g.streams.Acquire(ctx, c.primary)
	cancel()
	if err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
		c.abandon()
		return
	}
	m := &streamGroup{c: c, feed: f, name: c.primary, group: group, member: member, timeout: timeout,
		wake: make(chan struct{}, 1), inflight: map[uint64]struct{}{}}
	c.group = m
	f.Listen(m)
	c.accept(w, r, g.streamWS) // the member's run starts once upgraded (streamConn.connected)
}

// end lets the feed go, once the connection is over.
func (m *streamGroup) end() {
	m.feed.Unlisten(m)
	m.feed.Release()
}

var _ feed.Listener = (*streamGroup)(nil)

// Appended is the feed's news of a message: one more to claim.
func (m *streamGroup) Appended(*feed.Msg) { m.poke() }

func (m *streamGroup) poke() { poke(m.wake) }

// poke wakes whoever waits on wake (a channel of one), unless it is woken already.
func poke(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// ack takes the client's ack of one delivered message.
func (m *streamGroup) ack(seq uint64) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.inflight[seq]; !ok {
		return fmt.Sprintf("seq %d is not in flight on this connection", seq)
	}
	delete(m.inflight, seq)
	m.acked = append(m.acked, seq)
	m.poke()
	return ""
}

// run claims and delivers messages until the connection ends, then hands back what was
// acked and releases the rest.
func (m *streamGroup) run() {
	ctx := m.c.ctx
	defer func() {
		// On a fresh context: the connection's is done.
		bg, cancel := context.WithTimeout(context.Background(), m.c.g.opts.RequestTimeout)
		defer cancel()
		_, _ = m.flushAcks(bg)
		if err := m.c.g.sc.GroupRelease(bg, m.name, streamapi.GroupRelease{Group: m.group, Member: m.member}); err != nil {
			m.c.g.log.Warn("group release failed; its claims expire on their own", "stream", m.name, "group", m.group, "err", err)
			return
		}
		// Wake this gateway's other members: the released claims are theirs now.
		m.feed.Each(func(l feed.Listener) {
			if o, ok := l.(*streamGroup); ok && o != m {
				o.poke()
			}
		})
	}()
	var failing time.Time // since when the stream object has not answered
	reclaim := false      // a claim got no answer: it may have been stored
	backoff := 50 * time.Millisecond
	// retry waits after an error and reports whether to go on: a stream object that is
	// unavailable for a while (its host died and another takes over) does not end the
	// member's connection.
	retry := func(err error) bool {
		var se *streamapi.Error
		if !errors.As(err, &se) || se.Code != streamapi.CodeUnavailable {
			return false
		}
		if failing.IsZero() {
			failing = time.Now()
		} else if time.Since(failing) > groupRetryFor {
			return false
		}
		m.c.g.log.Debug("group member retries", "stream", m.name, "group", m.group, "err", err)
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return true
	}
	for ctx.Err() == nil {
		if sent, err := m.flushAcks(ctx); err != nil {
			if retry(err) {
				continue
			}
			m.fail(err)
			return
		} else if sent {
			failing, backoff = time.Time{}, 50*time.Millisecond
		}
		m.mu.Lock()
		room := m.c.window - len(m.inflight)
		m.mu.Unlock()
		wait := time.Duration(0) // until woken
		if room > 0 {
			req := streamapi.GroupClaim{Group: m.group, Member: m.member, Max: min(room, streamapi.MaxGroupClaim), TimeoutMs: m.timeout.Milliseconds(), Reclaim: reclaim}
			res, err := m.c.g.sc.GroupClaim(ctx, m.name, req)
			if err != nil {
				if retry(err) {
					reclaim = true
					continue
				}
				m.fail(err)
				return
			}
			failing, backoff = time.Time{}, 50*time.Millisecond
			err = m.deliver(ctx, res.Seqs, reclaim)
			reclaim = false
			if err != nil {
				m.fail(err)
				return
			}
			if len(res.Seqs) >= room {
				continue // more may be waiting
			}
			if res.RetryMs > 0 {
				wait = min(groupMaxWait, time.Duration(res.RetryMs)*time.Millisecond)
			}
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timeout = t.C
		}
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (m *streamGroup) fail(err error) {
	if m.c.ctx.Err() != nil {
		return
	}
	var se *streamapi.Error
	if errors.As(err, &se) && se.Code == streamapi.CodeTooManyGroups {
		// Reconnecting will not help: close as a policy violation, saying why.
		m.c.Fail(websocket.ClosePolicyViolation, "too_many_groups: "+se.Message)
		return
	}
	m.c.g.log.Warn("group member failed", "stream", m.name, "group", m.group, "err", err)
	m.c.Fail(CloseStreamUnavailable, "stream unavailable; reconnect")
}

// deliver reads the claimed messages from the feed (its ring, or the log in batches) and
// queues their frames; a message no longer retained, or dropped by the Transform hook, is
// acked at once, so that the group forgets it. After a reclaim, a seq the client holds
// already is not sent again.
func (m *streamGroup) deliver(ctx context.Context, seqs []uint64, reclaim bool) error {
	msgs, err := readSeqs(ctx, m.feed, seqs)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if reclaim {
			m.mu.Lock()
			_, held := m.inflight[seq]
			m.mu.Unlock()
			if held {
				continue
			}
		}
		var f []byte
		if msg := msgs[seq]; msg != nil {
			f = msg.Encoded(m.c.g.codecs.msgFrame)
		}
		if f == nil {
			m.mu.Lock()
			m.acked = append(m.acked, seq)
			m.mu.Unlock()
			continue
		}
		m.mu.Lock()
		m.inflight[seq] = struct{}{}
		m.mu.Unlock()
		m.c.enqueue(f)
	}
	return nil
}

// readSeqs reads the messages of seqs from f, in as few reads as runs of nearby seqs
// allow; a seq that is not stored has no entry.
func readSeqs(ctx context.Context, f *feed.Feed, seqs []uint64) (map[uint64]*feed.Msg, error) {
	want := slices.Clone(seqs)
	slices.Sort(want)
	want = slices.Compact(want)
	got := make(map[uint64]*feed.Msg, len(want))
	for i := 0; i < len(want); {
		from, n := want[i], 1
		for i+n < len(want) && want[i+n]-from < pumpBatch {
			n++
		}
		upTo := want[i+n-1]
		msgs, next, err := f.ReadRange(ctx, from, upTo, int(upTo-from+1))
		if err != nil {
			return nil, err
		}
		for _, msg := range msgs {
			got[msg.Seq] = msg
		}
		if next <= from {
			next = upTo + 1 // nothing found where the log should hold the claims
		}
		for i < len(want) && want[i] < next {
			i++
		}
	}
	return got, nil
}

// flushAcks tells the object the seqs acked since; sent reports that it did.
func (m *streamGroup) flushAcks(ctx context.Context) (sent bool, err error) {
	m.mu.Lock()
	acked := m.acked
	m.acked = nil
	m.mu.Unlock()
	if len(acked) == 0 {
		return false, nil
	}
	err = m.c.g.sc.GroupAck(ctx, m.name, streamapi.GroupAck{Group: m.group, Seqs: acked})
	if err != nil {
		m.mu.Lock()
		m.acked = append(m.acked, acked...)
		m.mu.Unlock()
	}
	return err == nil, err
}
