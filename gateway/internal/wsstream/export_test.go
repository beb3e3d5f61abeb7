package wsstream

import (
	"sync"
	"time"

	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
)

// What the package's external tests look at inside the Servers their gateways made.

var servers sync.Map // gateway id → *Server

func init() { testHookNew = func(g *Server) { servers.Store(g.id, g) } }

func serverOf(gateway string) *Server {
	g, ok := servers.Load(gateway)
	if !ok {
		panic("wsstream: no Server of gateway " + gateway)
	}
	return g.(*Server)
}

// SlowClosed is the number of connections of gateway closed as slow consumers.
func SlowClosed(gateway string) int64 { return serverOf(gateway).conns.SlowClosed() }

// LiveSubscribers counts the subscribers of stream on gateway that are at its feed's head.
func LiveSubscribers(gateway, stream string) int {
	fd := serverOf(gateway).streams.Running(stream)
	if fd == nil {
		return 0
	}
	live := 0
	fd.Each(func(l feed.Listener) {
		if s, ok := l.(*streamSub); ok && s.position() == fd.Last()+1 {
			live++
		}
	})
	return live
}

// SetSender makes gateway's WebSocket streams send their requests to the Stream objects
// through s; a test sets it before it opens a connection.
func SetSender(gateway string, s streamclient.Sender) { serverOf(gateway).sc = streamclient.New(s) }

// SetPublishAttempt sets publishAttempt to d until restore.
func SetPublishAttempt(d time.Duration) (restore func()) {
	old := publishAttempt
	publishAttempt = d
	return func() { publishAttempt = old }
}
