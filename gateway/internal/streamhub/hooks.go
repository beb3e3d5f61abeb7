package streamhub

// Server hooks (package streams, gateway.Options.StreamHooks): AuthorizeSubscribe and
// AuthorizePublish are asked by the connection handlers (wsstream) and by the plain-HTTP
// ones (Durable Streams, EventSource, sse-cluster); Transform runs where a WebSocket
// message's frame is built (a feed codec), once per message per gateway.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/streams"
)

// Hooks runs the server hooks.
type Hooks struct {
	h   streams.Hooks
	log *slog.Logger
	key func(*http.Request) string
}

// NewHooks runs h, logging a hook's panic on log; key is the API key a request
// authenticated with (the gateway's, "" without keys), which the hooks are shown.
func NewHooks(h streams.Hooks, log *slog.Logger, key func(*http.Request) string) *Hooks {
	return &Hooks{h: h, log: log, key: key}
}

// Authorizes reports whether an authorization hook is set.
func (h *Hooks) Authorizes() bool {
	return h.h.AuthorizeSubscribe != nil || h.h.AuthorizePublish != nil
}

// ConnInfo is the hooks' view of a connection's request. It is built once per
// connection, after the gateway set RemoteAddr and the API key; without authorization
// hooks nobody looks at it, and a connection keeps none (a copy of every header, per
// socket).
func (h *Hooks) ConnInfo(r *http.Request) streams.Conn {
	if !h.Authorizes() {
		return streams.Conn{}
	}
	q := r.URL.Query()
	return streams.Conn{Key: h.key(r), RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Query: q, ClientID: q.Get("client")}
}

// AuthorizeSubscribe asks the AuthorizeSubscribe hook; a refusal is a *streamapi.Error with
// streamapi.CodeForbidden and the hook's message.
func (h *Hooks) AuthorizeSubscribe(ctx context.Context, c streams.Conn, name string) error {
	f := h.h.AuthorizeSubscribe
	if f == nil {
		return nil
	}
	return h.refusal("AuthorizeSubscribe", name, func() error { return f(ctx, c, name) })
}

// AuthorizePublish asks the AuthorizePublish hook, like AuthorizeSubscribe.
func (h *Hooks) AuthorizePublish(ctx context.Context, c streams.Conn, name string, data json.RawMessage) error {
	f := h.h.AuthorizePublish
	if f == nil {
		return nil
	}
	return h.refusal("AuthorizePublish", name, func() error { return f(ctx, c, name, data) })
}

// refusal runs an authorization hook; a panic refuses (and is logged, not shown).
func (h *Hooks) refusal(hook, name string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("stream hook panicked", "hook", hook, "stream", name, "panic", p)
			err = &streamapi.Error{Code: streamapi.CodeForbidden, Message: "refused: the server's " + hook + " hook failed"}
		}
	}()
	if err := f(); err != nil {
		return &streamapi.Error{Code: streamapi.CodeForbidden, Message: err.Error()}
	}
	return nil
}

// IsForbidden reports whether err is a hook's refusal.
func IsForbidden(err error) bool {
	var se *streamapi.Error
	return errors.As(err, &se) && se.Code == streamapi.CodeForbidden
}

// Transform applies the Transform hook to a stored record: the data to send, or
// keep=false to drop it. A record that is not a message (streamapi.IsMessage: a Durable
// Streams marker without data) is dropped before the hook sees it, so every WebSocket
// reader steps over it as over a dropped message. A panicking hook drops the message (a
// transform may redact).
func (h *Hooks) Transform(name string, seq uint64, data []byte) (out []byte, keep bool) {
	if !streamapi.IsMessage(data) {
		return nil, false
	}
	f := h.h.Transform
	if f == nil {
		return data, true
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("stream hook panicked; message dropped", "hook", "Transform", "stream", name, "seq", seq, "panic", fmt.Sprint(p))
			out, keep = nil, false
		}
	}()
	out, keep = f(name, seq, data)
	if keep && len(out) == 0 {
		out = json.RawMessage("null")
	}
	return out, keep
}
