package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/olahol/melody"
)

// Close codes the gateway uses.
const (
	// CloseSlowConsumer: the client did not read fast enough and its queue filled up.
	CloseSlowConsumer = 4008
	// CloseObjectUnavailable: the object could not take the client's message; reconnect.
	CloseObjectUnavailable = 1013
)

// maxPending bounds messages an object sends to a socket before its upgrade completes.
const maxPending = 256

// gwSocket is one WebSocket held for an object. Until the upgrade completes, messages the
// object sends wait in pending: the object's sends and its accept reply travel on
// different subscriptions and may arrive in either order.
type gwSocket struct {
	id, class, name string
	mu              sync.Mutex
	sess            *melody.Session
	conn            *socketConn // under sess; set when the connection is hijacked
	pending         []frame
	closedByObject  bool
	closeCode       int
	closeReason     string
	seq             uint64 // client messages forwarded; only the read loop touches it
}

type frame struct {
	data   []byte
	binary bool
}

type socketTable struct {
	mu sync.RWMutex
	m  map[string]*gwSocket
}

func (t *socketTable) add(id, class, name string) *gwSocket {
	s := &gwSocket{id: id, class: class, name: name}
	t.mu.Lock()
	t.m[id] = s
	t.mu.Unlock()
	return s
}

func (t *socketTable) get(id string) *gwSocket {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[id]
}

func (t *socketTable) remove(id string) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

func (t *socketTable) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

func (t *socketTable) closeAll(code int, reason string) {
	t.mu.RLock()
	all := make([]*gwSocket, 0, len(t.m))
	for _, s := range t.m {
		all = append(all, s)
	}
	t.mu.RUnlock()
	for _, s := range all {
		s.close(code, reason, false)
	}
}

// close closes the socket; byObject marks a close the object asked for, which it need not
// be told about.
func (s *gwSocket) close(code int, reason string, byObject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if byObject {
		s.closedByObject = true
	}
	s.closeLocked(code, reason)
}

func (s *gwSocket) closeLocked(code int, reason string) {
	s.closeCode, s.closeReason = code, reason
	if s.sess != nil {
		_ = s.sess.CloseWithMsg(melody.FormatCloseMessage(code, reason))
	}
}

// write queues f for the client; the caller kicks the flusher once its writes are queued.
func (s *gwSocket) write(g *Gateway, f frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeCode != 0 {
		// Closing or closed: nothing may follow the close frame.
		return
	}
	if s.sess == nil {
		if len(s.pending) >= maxPending {
			s.closeCode, s.closeReason = CloseSlowConsumer, "too many messages before the upgrade completed"
			return
		}
		s.pending = append(s.pending, f)
		return
	}
	s.queueLocked(g, f)
}

// queueLocked appends f to the connection's buffer. Under s.mu, so that a frame queued
// before a close is in front of the close frame.
func (s *gwSocket) queueLocked(g *Gateway, f frame) {
	var hdr [10]byte
	if err := s.conn.appendFrame(frameHeader(hdr[:0], f.binary, len(f.data)), f.data); err != nil {
		if errors.Is(err, errSlowConsumer) {
			g.metrics.SlowConsumers.WithLabelValues(wire.ConnObjectSocket).Inc()
			s.closeLocked(CloseSlowConsumer, "slow consumer")
		}
		return
	}
	g.metrics.MessagesOut.WithLabelValues(wire.ConnObjectSocket).Inc()
	g.flush.add(s.conn)
}

const sessKey = "hf.socket"

func (g *Gateway) setupMelody() {
	m := melody.New()
	m.Config.MaxMessageSize = g.opts.MaxMessage
	// melody's queue carries only pings and closes: the object's frames go through the
	// socketConn (socketconn.go).
	m.Config.MessageBufferSize = 16
	// Origins are checked before the object sees the request; by now it is allowed.
	m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	m.HandleConnect(func(sess *melody.Session) {
		s := sessSocket(sess)
		s.mu.Lock()
		s.sess = sess
		// Frames that came before the upgrade completed go first, then a close asked for
		// meanwhile.
		code, reason := s.closeCode, s.closeReason
		for _, f := range s.pending {
			s.queueLocked(g, f)
		}
		s.pending = nil
		if code != 0 {
			s.closeLocked(code, reason)
		}
		s.mu.Unlock()
		g.flush.kick()
	})
	m.HandleMessage(func(sess *melody.Session, data []byte) { g.forward(sess, data, false) })
	m.HandleMessageBinary(func(sess *melody.Session, data []byte) { g.forward(sess, data, true) })
	m.HandleClose(func(sess *melody.Session, code int, reason string) error {
		s := sessSocket(sess)
		s.mu.Lock()
		if s.closeCode == 0 {
			s.closeCode, s.closeReason = code, reason
		}
		s.mu.Unlock()
		return nil
	})
	m.HandleError(func(sess *melody.Session, err error) {
		// Only pings and closes go through melody's queue now (the socketConn carries the
		// object's frames); a full queue still means a client that does not read.
		// It may be called from a close already holding the socket's lock, hence the
		// goroutine.
		if errors.Is(err, melody.ErrMessageBufferFull) {
			g.metrics.SlowConsumers.WithLabelValues(wire.ConnObjectSocket).Inc()
			go sessSocket(sess).close(CloseSlowConsumer, "slow consumer", false)
		}
	})
	m.HandleDisconnect(func(sess *melody.Session) {
		s := sessSocket(sess)
		g.sockets.remove(s.id)
		s.mu.Lock()
		byObject, code, reason := s.closedByObject, s.closeCode, s.closeReason
		s.mu.Unlock()
		if byObject {
			return
		}
		if code == 0 {
			code = 1006
		}
		g.notifyClose(s, code, reason)
	})
	g.melody = m
}

func sessSocket(sess *melody.Session) *gwSocket { return sess.MustGet(sessKey).(*gwSocket) }

// openSockets counts the object sockets' sessions (each runs in its HTTP handler), so
// that Close returns only once every object was told its socket closed.
type openSockets struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// add counts one more session; false once the gateway is closing.
func (o *openSockets) add() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return false
	}
	o.wg.Add(1)
	return true
}

// stop refuses new sessions, so that wg.Wait may begin.
func (o *openSockets) stop() {
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
}

// upgrade completes an accepted WebSocket upgrade.
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request, s *gwSocket) {
	if !g.socketsOpen.add() {
		g.sockets.remove(s.id)
		g.notifyClose(s, 1001, "gateway shutting down")
		http.Error(w, "gateway shutting down", http.StatusServiceUnavailable)
		return
	}
	defer g.socketsOpen.wg.Done()
	if err := g.melody.HandleRequestWithKeys(hijackSocket(w, s), r, map[string]any{sessKey: s}); err != nil {
		g.log.Debug("upgrade failed", "err", err)
		s.mu.Lock()
		connected := s.sess != nil
		s.mu.Unlock()
		if !connected {
			// The object registered a socket that never opened: tell it so.
			g.sockets.remove(s.id)
			g.notifyClose(s, 1006, "upgrade failed")
		}
	}
}

// forward hands one client message to the object and waits for it to be taken. It runs
// on the session's read loop, so a slow object slows only this client's reads, and
// messages reach the object in order. Each message carries the socket's next number, so a
// message resent after a failover (its answer lost with the old owner) is taken once.
func (g *Gateway) forward(sess *melody.Session, data []byte, binary bool) {
	s := sessSocket(sess)
	s.seq++
	g.metrics.MessagesIn.WithLabelValues(wire.ConnObjectSocket).Inc()
	m := nats.NewMsg("")
	m.Header.Set(wire.HdrOp, wire.OpSocketMsg)
	m.Header.Set(wire.HdrClass, s.class)
	m.Header.Set(wire.HdrName, s.name)
	m.Header.Set(wire.HdrSocket, s.id)
	m.Header.Set(wire.HdrGateway, g.id)
	m.Header.Set(wire.HdrSeq, strconv.FormatUint(s.seq, 10))
	if binary {
		m.Header.Set(wire.HdrBinary, "1")
	}
	m.Data = data
	ctx, cancel := context.WithTimeout(g.ctx, g.opts.RequestTimeout)
	defer cancel()
	for backoff := 10 * time.Millisecond; ; backoff = min(backoff*2, 500*time.Millisecond) {
		_, err := g.request(ctx, s.class, s.name, m)
		switch {
		case err == nil:
			return
		case errors.Is(err, objclient.ErrBadRequest):
			// The object does not know this socket (closed on its side): close it here too.
			s.close(1008, "socket unknown to its object", true)
			return
		}
		// The owner died, froze or moved: the socket stays open and the message goes to
		// the next owner, which drops it if the last one took it already.
		select {
		case <-ctx.Done():
			g.log.Warn("socket message not delivered", "object", names.Key(s.class, s.name), "socket", s.id, "err", err)
			s.close(CloseObjectUnavailable, "object unavailable, reconnect", false)
			return
		case <-time.After(backoff):
		}
	}
}

// notifyClose tells the object its socket closed, retrying through moves.
func (g *Gateway) notifyClose(s *gwSocket, code int, reason string) {
	m := nats.NewMsg("")
	m.Header.Set(wire.HdrOp, wire.OpSocketClose)
	m.Header.Set(wire.HdrClass, s.class)
	m.Header.Set(wire.HdrName, s.name)
	m.Header.Set(wire.HdrSocket, s.id)
	m.Header.Set(wire.HdrGateway, g.id)
	m.Header.Set(wire.HdrCode, strconv.Itoa(code))
	m.Header.Set(wire.HdrReason, reason)
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.RequestTimeout)
	defer cancel()
	if _, err := g.request(ctx, s.class, s.name, m); err != nil {
		g.log.Warn("socket close not delivered to its object", "object", names.Key(s.class, s.name), "socket", s.id, "err", err)
	}
}

// command runs what an object asks of this gateway's sockets.
func (g *Gateway) command(m *nats.Msg) {
	ids := m.Header.Get(wire.HdrSockets)
	switch m.Header.Get(wire.HdrOp) {
	case wire.GwOpSend:
		f := frame{data: m.Data, binary: m.Header.Get(wire.HdrBinary) == "1"}
		// The ids are walked in place: a broadcast names every member of a room.
		for rest, more := ids, true; more; {
			var id string
			id, rest, more = strings.Cut(rest, ",")
			if s := g.sockets.get(id); s != nil {
				s.write(g, f)
			}
		}
		g.flush.kick()
	case wire.GwOpClose:
		code, _ := strconv.Atoi(m.Header.Get(wire.HdrCode))
		for _, id := range strings.Split(ids, ",") {
			if s := g.sockets.get(id); s != nil {
				s.close(code, m.Header.Get(wire.HdrReason), true)
			}
		}
	}
}
