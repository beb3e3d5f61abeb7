package gateway

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/wsstream"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// Close codes the gateway uses.
const (
	// CloseSlowConsumer: the client did not read fast enough and its queue filled up
	// (gateway/internal/conns: the queue is dropped; a stream client resumes from its last
	// ack).
	CloseSlowConsumer = conns.CloseSlowConsumer
	// CloseObjectUnavailable: the object could not take the client's message; reconnect.
	CloseObjectUnavailable = 1013
	// CloseStreamUnavailable: a stream could not be read or written; reconnect.
	CloseStreamUnavailable = wsstream.CloseStreamUnavailable
)

// gwSocket is one WebSocket held for an object. Its connection (conn) exists from the
// moment the socket is registered, before the object accepted it: the object's sends and
// its accept reply travel on different subscriptions and may arrive in either order, and
// what it sends before the upgrade completes waits in the connection's queue.
type gwSocket struct {
	g               *Gateway
	id, class, name string
	conn            *conns.Conn
	mu              sync.Mutex
	closedByObject  bool
	closeCode       int
	closeReason     string
	seq             uint64 // client messages forwarded; only the read loop touches it
}

var _ conns.Session = (*gwSocket)(nil)

type frame struct {
	data   []byte
	binary bool
}

type socketTable struct {
	mu sync.RWMutex
	m  map[string]*gwSocket
}

func (t *socketTable) add(g *Gateway, id, class, name string) *gwSocket {
	s := &gwSocket{g: g, id: id, class: class, name: name, conn: g.conns.NewConn(conns.ObjectSocket)}
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

// drop removes a socket that never opened, letting its connection go.
func (t *socketTable) drop(s *gwSocket) {
	t.remove(s.id)
	s.conn.Discard()
}

func (t *socketTable) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

func (t *socketTable) closeAll(code int, reason string) {
	t.mu.RLock()
	all := slices.Collect(maps.Values(t.m))
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
	if s.closeCode == 0 {
		s.closeCode, s.closeReason = code, reason
	}
	s.conn.Close(code, reason) // after what the object sent before
}

// write queues f for the client.
func (s *gwSocket) write(f frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeCode != 0 {
		return // closing or closed: nothing may follow the close frame
	}
	ok := false
	if f.binary {
		ok = s.conn.SendBinary(f.data)
	} else {
		ok = s.conn.Send(f.data)
	}
	if !ok && s.conn.SlowConsumer() {
		s.closeCode, s.closeReason = CloseSlowConsumer, "slow consumer"
	}
}

func (s *gwSocket) Connected() { s.conn.Ready() }

func (s *gwSocket) Message(data []byte, binary bool) {
	s.g.metrics.MessagesIn.WithLabelValues(wire.ConnObjectSocket).Inc()
	s.g.forward(s, data, binary)
}

func (s *gwSocket) Closing(code int, reason string) {
	s.mu.Lock()
	if s.closeCode == 0 {
		s.closeCode, s.closeReason = code, reason
	}
	s.mu.Unlock()
}

func (s *gwSocket) Fail(code int, reason string) { s.close(code, reason, false) }

// Disconnected tells the object its socket closed, unless it closed it itself.
func (s *gwSocket) Disconnected() {
	g := s.g
	defer g.socketsOpen.wg.Done()
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
}

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
		g.sockets.drop(s)
		g.notifyClose(s, 1001, "gateway shutting down")
		http.Error(w, "gateway shutting down", http.StatusServiceUnavailable)
		return
	}
	failed := func() {
		// The object registered a socket that never opened: tell it so.
		g.sockets.remove(s.id)
		g.notifyClose(s, 1006, "upgrade failed")
		g.socketsOpen.wg.Done()
	}
	if err := g.conns.AcceptWebSocket(w, r, s.conn, g.melody, s, failed); err != nil {
		g.log.Debug("upgrade failed", "err", err)
		failed()
	}
}

// forward hands one client message to the object and waits for it to be taken. It runs
// on the session's read loop, so a slow object slows only this client's reads, and
// messages reach the object in order. Each message carries the socket's next number, so a
// message resent after a failover (its answer lost with the old owner) is taken once.
func (g *Gateway) forward(s *gwSocket, data []byte, binary bool) {
	s.seq++
	m := g.socketMsg(s, wire.OpSocketMsg)
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

// socketMsg is a message of op to s's object about s.
func (g *Gateway) socketMsg(s *gwSocket, op string) *nats.Msg {
	m := nats.NewMsg("")
	m.Header.Set(wire.HdrOp, op)
	m.Header.Set(wire.HdrClass, s.class)
	m.Header.Set(wire.HdrName, s.name)
	m.Header.Set(wire.HdrSocket, s.id)
	m.Header.Set(wire.HdrGateway, g.id)
	return m
}

// notifyClose tells the object its socket closed, retrying through moves.
func (g *Gateway) notifyClose(s *gwSocket, code int, reason string) {
	m := g.socketMsg(s, wire.OpSocketClose)
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
				s.write(f)
			}
		}
	case wire.GwOpClose:
		code, _ := strconv.Atoi(m.Header.Get(wire.HdrCode))
		for _, id := range strings.Split(ids, ",") {
			if s := g.sockets.get(id); s != nil {
				s.close(code, m.Header.Get(wire.HdrReason), true)
			}
		}
	}
}
