package gateway

// Server hooks (package streams, Options.StreamHooks): AuthorizeSubscribe and
// AuthorizePublish are asked by the connection handlers (stream_handler.go,
// stream_client.go, stream_compat.go) and by the plain-HTTP ones (Durable Streams,
// EventSource, sse-cluster: authorizeHTTP); Transform runs where a WebSocket message's
// frame is built (streamHub.msgFrame, a feed codec), once per message per gateway.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/streams"
)

// streamConnInfo is the hooks' view of a connection's request. It is built once per
// connection, after serve set RemoteAddr and the API key; without authorization hooks
// nobody looks at it, and a connection keeps none (a copy of every header, per socket).
func (g *Gateway) streamConnInfo(r *http.Request) streams.Conn {
	if h := g.opts.StreamHooks; h.AuthorizeSubscribe == nil && h.AuthorizePublish == nil {
		return streams.Conn{}
	}
	q := r.URL.Query()
	return streams.Conn{Key: requestKey(r), RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Query: q, ClientID: q.Get("client")}
}

// authorizeSubscribe asks the AuthorizeSubscribe hook; a refusal is a *streamapi.Error with
// streamapi.CodeForbidden and the hook's message.
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
			err = &streamapi.Error{Code: streamapi.CodeForbidden, Message: "refused: the server's " + hook + " hook failed"}
		}
	}()
	if err := f(); err != nil {
		return &streamapi.Error{Code: streamapi.CodeForbidden, Message: err.Error()}
	}
	return nil
}

// isForbidden reports whether err is a hook's refusal.
func isForbidden(err error) bool {
	var se *streamapi.Error
	return errors.As(err, &se) && se.Code == streamapi.CodeForbidden
}

// transform applies the Transform hook to a stored record: the data to send, or
// keep=false to drop it. A record that is not a message (streamapi.IsMessage: a Durable
// Streams marker without data) is dropped before the hook sees it, so every WebSocket
// reader steps over it as over a dropped message. A panicking hook drops the message (a
// transform may redact).
func (g *Gateway) transform(name string, seq uint64, data []byte) (out []byte, keep bool) {
	if !streamapi.IsMessage(data) {
		return nil, false
	}
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

// authorizeHTTP asks the hooks about a plain-HTTP request on stream name: reads (GET,
// HEAD) are subscribes, everything else publishes. A JSON append's body is shown to
// AuthorizePublish (it is put back for the handler); other bodies are passed as nil. A
// refusal answers 403 and reports false.
func (h *httpStreams) authorizeHTTP(w http.ResponseWriter, r *http.Request, name string) bool {
	g := h.g
	hooks := g.opts.StreamHooks
	if hooks.AuthorizeSubscribe == nil && hooks.AuthorizePublish == nil {
		return true
	}
	c := h.g.streamConnInfo(r)
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		err = g.authorizeSubscribe(r.Context(), c, name)
	default:
		var data json.RawMessage
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			b, rerr := io.ReadAll(io.LimitReader(r.Body, g.opts.MaxBodyBytes+1))
			if rerr != nil {
				httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "reading the body: "+rerr.Error())
				return false
			}
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
			if int64(len(b)) <= g.opts.MaxBodyBytes && json.Valid(b) {
				data = b
			}
		}
		err = g.authorizePublish(r.Context(), c, name, data)
	}
	if err != nil {
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, err.Error())
		return false
	}
	return true
}
