package wsstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/olahol/melody"
)

// parseFrom reads a from value: a seq >= 1, or "latest".
func parseFrom(s string) (seq uint64, latest bool, err error) {
	if s == "latest" {
		return 0, true, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, false, fmt.Errorf("from=%q: want a seq of 1 or more, or \"latest\"", s)
	}
	return n, false, nil
}

// acceptUpgrade answers a request to route that is not a WebSocket upgrade (400) or comes
// from an origin not allowed (403); true: go on with the upgrade.
func (g *Server) acceptUpgrade(w http.ResponseWriter, r *http.Request, route string) bool {
	if !websocket.IsWebSocketUpgrade(r) {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, route+" takes a WebSocket upgrade")
		return false
	}
	if !g.opts.CheckOrigin(r) {
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, "origin not allowed: "+r.Header.Get("Origin"))
		return false
	}
	return true
}

// ServeStream is GET /v1/stream/{name...} with a WebSocket upgrade: a connection to
// durable streams.
func (g *Server) ServeStream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := names.ValidateStream(name); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, err.Error())
		return
	}
	if !g.acceptUpgrade(w, r, "GET /v1/stream/{name}") {
		return
	}
	q := r.URL.Query()
	var from uint64
	var latest bool
	if v := q.Get("from"); v != "" {
		var err error
		if from, latest, err = parseFrom(v); err != nil {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, err.Error())
			return
		}
	}
	window := defaultStreamWindow
	if v := q.Get("window"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxStreamWindow {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, fmt.Sprintf("window=%q: want 1 to %d", v, maxStreamWindow))
			return
		}
		window = n
	}
	group := q.Get("group")
	if q.Has("group") && !validClientID(group) {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "group= wants 1 to 128 letters, digits, '_', '-', '.', ':'")
		return
	}
	redelivery := time.Duration(0)
	if v := q.Get("redelivery"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < minRedelivery || d > maxRedelivery {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, fmt.Sprintf("redelivery=%q: want a duration from %v to %v", v, minRedelivery, maxRedelivery))
			return
		}
		redelivery = d
	}
	if q.Has("group") && (q.Has("from")) {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "from= does not apply to a group: the group keeps its own position")
		return
	}
	client := q.Get("client")
	if q.Has("client") && !validClientID(client) {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "client= wants 1 to 128 letters, digits, '_', '-', '.', ':'")
		return
	}
	// The AuthorizeSubscribe hook is asked for the URL's stream before anything is opened.
	c := g.newStreamConn(r, name)
	c.client, c.window, c.redelivery = client, window, redelivery
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.RequestTimeout)
	err := g.hooks.AuthorizeSubscribe(ctx, c.info, name)
	cancel()
	if err != nil {
		c.abandon()
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, err.(*streamapi.Error).Message)
		return
	}
	if group != "" {
		g.serveStreamGroup(w, r, c, group, redelivery) // group.go
		return
	}
	// Subscribe before upgrading, so that a stream that cannot be opened is an HTTP error.
	ctx, cancel = context.WithTimeout(r.Context(), g.opts.RequestTimeout)
	_, err = c.subscribe(ctx, name, from, latest)
	cancel()
	if err != nil {
		var se *streamapi.Error
		if errors.As(err, &se) && se.Code != streamapi.CodeUnavailable && se.Code != streamapi.CodeInternal {
			httperr.Write(w, http.StatusBadRequest, se.Code, se.Message)
		} else {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
		}
		c.abandon()
		return
	}
	c.accept(w, r, g.streamWS)
}

// accept hands the upgrade to melody (conns.AcceptWebSocket): the session runs on a goroutine of
// its own and the handler returns, so that net/http's connection, request, response and
// their buffers (~10 KB), held while a handler runs, are freed.
func (c *streamConn) accept(w http.ResponseWriter, r *http.Request, m *melody.Melody) {
	if err := c.g.conns.AcceptWebSocket(w, r, c.conn, m, c, c.abandon); err != nil {
		c.abandon()
	}
}

// abandon lets go of a connection that never opened.
func (c *streamConn) abandon() {
	c.closeSubs()
	c.cancel()
	c.conn.Discard()
	c.letFeedGo()
}

func (c *streamConn) closeSubs() {
	c.smu.Lock()
	subs := c.subs
	c.subs = map[string]*streamSub{}
	c.subsClosed = true
	c.smu.Unlock()
	for _, s := range subs {
		s.stop()
	}
}

func validClientID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

// frame handles one client frame; false ends the connection.
func (c *streamConn) frame(data []byte) bool {
	f := frameFields(data)
	if f == nil {
		code, msg := notAnObject(data)
		c.sendError("", code, msg)
		return true
	}
	var id string
	if raw, ok := f["id"]; ok {
		if !rawString(raw, &id) {
			c.sendError("", streamapi.CodeBadField, "id must be a string")
			return true
		}
	}
	var typ string
	if !rawString(f["type"], &typ) || typ == "" {
		c.sendError(id, streamapi.CodeBadField, "type must be a string")
		return true
	}
	switch typ {
	case "publish":
		if _, ok := f["id"]; !ok {
			c.sendError("", streamapi.CodeBadField, "publish needs an id")
			return true
		}
		d, ok := f["data"]
		if !ok {
			c.sendError(id, streamapi.CodeBadField, "publish needs data")
			return true
		}
		p, msg := frameProducer(f)
		if msg != "" {
			c.sendError(id, streamapi.CodeBadField, msg)
			return true
		}
		if !c.queuePublish(pubReq{id: id, data: d, producer: p, at: time.Now()}) {
			return false
		}
	case "ack":
		var seq uint64
		if json.Unmarshal(f["seq"], &seq) != nil || seq == 0 {
			c.sendError(id, streamapi.CodeBadField, "ack needs seq, a positive integer")
			return true
		}
		name := c.primary
		if raw, ok := f["stream"]; ok && json.Unmarshal(raw, &name) != nil {
			c.sendError(id, streamapi.CodeBadField, "stream must be a string")
			return true
		}
		if c.group != nil && name == c.primary {
			// A group member acks each message it got, not a prefix.
			if msg := c.group.ack(seq); msg != "" {
				c.sendError(id, streamapi.CodeBadAck, msg)
			}
			return true
		}
		if msg := c.ack(name, seq); msg != "" {
			c.sendError(id, streamapi.CodeBadAck, msg)
		}
	case "command":
		if _, ok := f["id"]; !ok {
			c.sendError("", streamapi.CodeBadField, "command needs an id")
			return true
		}
		var name string
		if json.Unmarshal(f["command"], &name) != nil || name == "" {
			c.sendError(id, streamapi.CodeBadField, "command must be a string")
			return true
		}
		args := f["args"]
		if len(args) == 0 || string(args) == "null" {
			args = json.RawMessage("{}")
		}
		if !c.queueCommand(cmdReq{id: id, name: name, args: args}) {
			return false
		}
	default:
		c.sendError(id, streamapi.CodeUnknownType, fmt.Sprintf("unknown frame type %q", typ))
	}
	return true
}

// command runs one command and returns its result.
func (c *streamConn) command(cmd cmdReq) (any, error) {
	var a struct {
		Stream     *string         `json:"stream"`
		From       json.RawMessage `json:"from"`
		UpTo       *uint64         `json:"upTo"`
		State      json.RawMessage `json:"state"`
		Checkpoint *uint64         `json:"checkpoint"`
	}
	if err := json.Unmarshal(cmd.args, &a); err != nil {
		return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: argsProblem(err)}
	}
	name := c.primary
	if a.Stream != nil {
		name = *a.Stream
		if err := names.ValidateStream(name); err != nil {
			return nil, &streamapi.Error{Code: streamapi.CodeBadName, Message: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.g.opts.RequestTimeout)
	defer cancel()
	switch cmd.name {
	case "getServerInfo":
		return map[string]any{"version": version(), "node": c.g.id, "uptime": time.Since(c.g.started).Seconds()}, nil
	case "getStreamInfo":
		first, last, err := c.g.streams.Info(ctx, name)
		if err != nil {
			return nil, err
		}
		subs := 0
		if f := c.g.streams.Running(name); f != nil {
			subs = f.Listeners()
		}
		return map[string]any{"stream": name, "firstSeq": first, "lastSeq": last, "subscribers": subs}, nil
	case "subscribe":
		if a.Stream == nil {
			return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: "subscribe needs stream"}
		}
		var from uint64
		var latest bool
		if len(a.From) > 0 && string(a.From) != "null" {
			var s string
			if json.Unmarshal(a.From, &s) == nil {
				if s != "latest" {
					return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: `from must be a seq of 1 or more, or "latest"`}
				}
				latest = true
			} else if json.Unmarshal(a.From, &from) != nil || from == 0 {
				return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: `from must be a seq of 1 or more, or "latest"`}
			}
		}
		if err := c.g.hooks.AuthorizeSubscribe(ctx, c.info, name); err != nil {
			return nil, err
		}
		s, err := c.subscribe(ctx, name, from, latest)
		if err != nil {
			return nil, err
		}
		return map[string]any{"stream": name, "from": s.position()}, nil
	case "unsubscribe":
		if a.Stream == nil {
			return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: "unsubscribe needs stream"}
		}
		if !c.unsubscribe(name) {
			return nil, &streamapi.Error{Code: streamapi.CodeNotSubscribed, Message: "not subscribed to " + name}
		}
		return map[string]any{"stream": name}, nil
	case "deleteMessages":
		if a.UpTo == nil {
			return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: "deleteMessages needs upTo"}
		}
		if err := c.g.hooks.AuthorizePublish(ctx, c.info, name, cmd.args); err != nil {
			return nil, err
		}
		i, err := c.g.sc.DeleteMessages(ctx, name, *a.UpTo)
		if err != nil {
			return nil, err
		}
		c.g.streams.TrimmedTo(name, i.FirstSeq)
		return i, nil
	case "getState":
		if err := c.g.hooks.AuthorizeSubscribe(ctx, c.info, name); err != nil {
			return nil, err
		}
		return c.g.sc.State(ctx, name)
	case "putState":
		if len(a.State) == 0 {
			return nil, &streamapi.Error{Code: streamapi.CodeBadArgs, Message: "putState needs state"}
		}
		if err := c.g.hooks.AuthorizePublish(ctx, c.info, name, cmd.args); err != nil {
			return nil, err
		}
		st, err := c.g.sc.PutState(ctx, name, streamapi.PutState{State: a.State, Checkpoint: a.Checkpoint})
		if err != nil {
			return nil, err
		}
		c.g.streams.TrimmedTo(name, st.FirstSeq)
		return st, nil
	}
	return nil, &streamapi.Error{Code: streamapi.CodeUnknownCommand, Message: fmt.Sprintf("unknown command %q", cmd.name)}
}

// version is the binary's module version.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
