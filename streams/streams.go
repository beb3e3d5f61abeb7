// Package streams is the public SDK for server hooks on Holdfast's durable streams
// (docs/streams.md): Go functions, built into the binary, that authorize each subscribe
// and publish and transform or drop each message before the gateway sends it to
// subscribers. Register them with holdfast.WithStreamHooks.
//
// The hooks run on every gateway, concurrently, and must be quick: AuthorizeSubscribe and
// AuthorizePublish hold up the connection's command or publish, and Transform holds up a
// stream's feed on that gateway. Like package functions, this package imports nothing
// else of Holdfast.
package streams

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// ErrForbidden is the error a hook may return, or wrap, to refuse: the client gets the
// error's message with the code "forbidden". Any other non-nil error refuses too.
var ErrForbidden = errors.New("streams: forbidden")

// Conn describes the client connection a hook is asked about. Its fields are the
// connection's, read when it connected; a hook must not modify Header or Query.
type Conn struct {
	// Key is the API key the connection authenticated with ("" when the gateway has no
	// API keys). With keys configured it is always one of them.
	Key string
	// RemoteAddr is the client's address (from the trusted proxy header when configured).
	RemoteAddr string
	// Header and Query are the connection request's headers and query parameters.
	Header http.Header
	Query  url.Values
	// ClientID is the durable client id (the client= parameter), or "".
	ClientID string
}

// Hooks are the server hooks of durable streams. A nil hook allows everything (or, for
// Transform, sends every message unchanged).
type Hooks struct {
	// AuthorizeSubscribe is asked before a connection reads a stream: on connect for the
	// URL's stream (a refusal is an HTTP 403 before the WebSocket upgrade), on each
	// subscribe command, and for getState. A non-nil error refuses it; its message is
	// sent to the client.
	AuthorizeSubscribe func(ctx context.Context, c Conn, stream string) error
	// AuthorizePublish is asked before each publish, with the message's data, and before
	// the commands that change a stream (deleteMessages, putState), with the command's
	// args as data. A non-nil error refuses it; nothing is stored.
	AuthorizePublish func(ctx context.Context, c Conn, stream string, data json.RawMessage) error
	// Transform runs once per message per gateway before the message is encoded for
	// local subscribers (and again when a subscriber that fell behind reads it back): it
	// returns the data to send, or keep=false to drop the message. Subscribers still
	// advance past a dropped message's seq, so no gap is reported. The stored message is
	// not changed. Transform must not modify data; it may return it as is.
	Transform func(stream string, seq uint64, data json.RawMessage) (out json.RawMessage, keep bool)
}
