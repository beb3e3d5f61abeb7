package gateway

// Server hooks (package streams, Options.StreamHooks): AuthorizeSubscribe and
// AuthorizePublish are asked by the connection handlers (stream_handler.go,
// stream_client.go, stream_compat.go); Transform runs where a message's frame is built
// (upstream.frame), once per live message per gateway.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/holdfast/holdfast/streams"
)

// streamConnInfo is the hooks' view of a connection's request. It is built once per
// connection, after serve set RemoteAddr and the API key.
func streamConnInfo(r *http.Request) streams.Conn {
	q := r.URL.Query()
	return streams.Conn{Key: requestKey(r), RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Query: q, ClientID: q.Get("client")}
}

// authorizeSubscribe asks the AuthorizeSubscribe hook; a refusal is a *streamError with
// code "forbidden" and the hook's message.
func (g *Gateway) authorizeSubscribe(ctx context.Context, c streams.Conn, name string) error {
	h := g.opts.StreamHooks.AuthorizeSubscribe
	if h == nil {
		return nil
	}
	return g.hookRefusal("AuthorizeSubscribe", name, func() error { return h(ctx, c, name) })
}

// authorizePublish asks the AuthorizePublish hook, like authorizeSubscribe.
func (g *Gateway) authorizePublish(ctx context.Context, c streams.Conn, name string, data json.RawMessage) error {
	h := g.opts.StreamHooks.AuthorizePublish
	if h == nil {
		return nil
	}
	return g.hookRefusal("AuthorizePublish", name, func() error { return h(ctx, c, name, data) })
}

// hookRefusal runs an authorization hook; a panic refuses (and is logged, not shown).
func (g *Gateway) hookRefusal(hook, name string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("stream hook panicked", "hook", hook, "stream", name, "panic", p)
			err = &streamError{"forbidden", "refused: the server's " + hook + " hook failed"}
		}
	}()
	if err := f(); err != nil {
		return &streamError{"forbidden", err.Error()}
	}
	return nil
}

// isForbidden reports whether err is a hook's refusal.
func isForbidden(err error) bool {
	var se *streamError
	return errors.As(err, &se) && se.code == "forbidden"
}

// transform applies the Transform hook to a stored message: the data to send, or
// keep=false to drop it. A panicking hook drops the message (a transform may redact).
func (g *Gateway) transform(name string, seq uint64, data []byte) (out []byte, keep bool) {
	h := g.opts.StreamHooks.Transform
	if h == nil {
		return data, true
	}
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("stream hook panicked; message dropped", "hook", "Transform", "stream", name, "seq", seq, "panic", fmt.Sprint(p))
			out, keep = nil, false
		}
	}()
	out, keep = h(name, seq, data)
	if keep && len(out) == 0 {
		out = json.RawMessage("null")
	}
	return out, keep
}
