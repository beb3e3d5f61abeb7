package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// serveObject hands r to object (class, name): a plain request is answered with the
// object's response, a WebSocket upgrade becomes a socket held here once the object
// accepts it.
func (g *Gateway) serveObject(w http.ResponseWriter, r *http.Request, class, name string) {
	if err := names.Validate(name); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, err.Error())
		return
	}
	upgrade := websocket.IsWebSocketUpgrade(r)
	if upgrade && !g.checkOrigin(r) {
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, "origin not allowed: "+r.Header.Get("Origin"))
		return
	}
	body, ok := httperr.ReadBody(w, r, g.opts.MaxBodyBytes)
	if !ok {
		return
	}
	if mp := g.nc.MaxPayload(); mp > 0 && int64(len(body))+16<<10 > mp {
		httperr.Write(w, http.StatusRequestEntityTooLarge, httperr.CodeTooLarge,
			"request body larger than the NATS server's max_payload allows; raise max_payload or lower [limits] max_body_bytes")
		return
	}
	m := wire.EncodeRequest("", class, name, r, body)
	var sock *gwSocket
	if upgrade {
		if g.sockets.count() >= g.opts.MaxConnections {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, "too many open WebSockets on this gateway")
			return
		}
		sock = g.sockets.add(g, nuid.Next(), class, name)
		m.Header.Set(wire.HdrSocket, sock.id)
		m.Header.Set(wire.HdrGateway, g.id)
	}
	reply, err := g.request(r.Context(), class, name, m)
	if err != nil {
		if sock != nil {
			g.sockets.drop(sock)
		}
		httperr.WriteCallError(w, err)
		return
	}
	if sock == nil {
		wire.WriteResponse(w, reply)
		return
	}
	if reply.Header.Get(wire.HdrAccept) != sock.id {
		g.sockets.drop(sock)
		wire.WriteResponse(w, reply)
		return
	}
	g.upgrade(w, r, sock)
}

// request sends m to the object within the request timeout.
func (g *Gateway) request(ctx context.Context, class, name string, m *nats.Msg) (*nats.Msg, error) {
	c := g.client.Load()
	if c == nil {
		return nil, errors.New("gateway: not connected to NATS JetStream yet")
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.RequestTimeout)
	defer cancel()
	began := time.Now()
	reply, err := c.Request(ctx, class, name, m)
	g.metrics.ObjectRequests.WithLabelValues(class, objectResult(err)).Inc()
	g.metrics.ObjectRequestDuration.WithLabelValues(class).Observe(time.Since(began).Seconds())
	return reply, err
}
