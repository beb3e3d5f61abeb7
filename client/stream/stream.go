// Package stream is a Go client for Holdfast's durable message streams
// (GET /v1/stream/{name}, a WebSocket; see docs/streams.md).
//
//	c, err := stream.Dial(ctx, "ws://localhost:8787/v1/stream/chat/room1", stream.Options{
//		Token: key, Client: "worker-1",
//		Handler: func(m stream.Message) { fmt.Println(m.Seq, string(m.Data)) },
//	})
//	seq, err := c.Publish(ctx, map[string]string{"text": "hi"})
//
// Messages reach Handler in seq order, one at a time; each is acknowledged once Handler
// returns. Publishes are idempotent: a Conn is a producer with a random id, and a publish
// whose answer was lost is sent again and stored once (publish.go). The connection is re-established after a drop (a slow-consumer close
// included): with a Client id, the server resumes right after the last stored ack;
// without one, the client asks for the seq after the last one it handled. Messages
// handled already are never handed to Handler twice by one Conn.
//
// With Options.Group the Conn is a member of a consumer group instead: each message of
// the stream goes to one member, and one not acknowledged within the redelivery timeout
// goes to a member again. A member's messages are not in seq order, and Handler may see a
// message again (at-least-once): after a redelivery, or after a reconnect that released
// its claims before their acks reached the server.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure a Conn.
type Options struct {
	// Token is the API key, sent as "Authorization: Bearer <token>".
	Token string
	// Client is a durable client id: the server keeps its ack position.
	Client string
	// From is the first seq wanted on the first connection (0: the server's default,
	// which is 1, or after the durable client's last ack); Latest asks for new messages
	// only.
	From   uint64
	Latest bool
	// Window is the number of unacknowledged messages in flight (0: the server's 256).
	Window int
	// Group joins the consumer group of that name (1-128 of [A-Za-z0-9_.:-]); Client
	// then names the member (the server makes one up without it). From and Latest do
	// not apply: the group keeps its own position.
	Group string
	// Redelivery is how long a delivered message may stay unacknowledged before the
	// server sends it again: to any member of a Group, or on this connection to a durable
	// Client (0: the server's 30 s; 100 ms to 1 h).
	Redelivery time.Duration
	// Handler receives messages, in order, on the connection's read goroutine: it must
	// not wait for this Conn's answers (Publish, Command) itself; start a goroutine.
	Handler func(Message)
	// OnError receives error frames that answer no request of this client, such as
	// "history_gone" (messages removed before they could be delivered), and, with code
	// "policy_violation", a close (1008) after which the Conn stops reconnecting: the
	// server refused its terms, so every call then returns ErrClosed.
	OnError func(*Error)
	// Header is sent with every handshake (Origin, say).
	Header http.Header
	// Dialer defaults to websocket.DefaultDialer.
	Dialer *websocket.Dialer
	// MaxBackoff bounds the wait between reconnects; default 5 s.
	MaxBackoff time.Duration
}

// Message is one stream message.
type Message struct {
	Stream string
	Seq    uint64
	Time   time.Time
	Data   json.RawMessage
}

// Error is an error frame from the server.
type Error struct {
	ID       string `json:"id"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Stream   string `json:"stream"`
	Seq      uint64 `json:"seq"`
	FirstSeq uint64 `json:"firstSeq"`
}

func (e *Error) Error() string { return "stream: " + e.Code + ": " + e.Message }

// Errors.
var (
	// ErrDisconnected: the connection dropped before a command's answer came; it may or
	// may not have taken effect. (Publishes are sent again instead: see Publish.)
	ErrDisconnected = errors.New("stream: disconnected before the answer")
	ErrClosed       = errors.New("stream: connection closed")
)

// Conn is a connection to one stream (more through Subscribe), re-established as needed.
type Conn struct {
	url     string
	opts    Options
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	primary string

	mu      sync.Mutex
	ws      *websocket.Conn
	nextID  uint64
	pending map[string]chan frame
	last    map[string]uint64 // last seq handed to Handler, per stream
	extra   map[string]bool   // streams added with Subscribe

	wmu sync.Mutex // one writer at a time

	// Publishes (publish.go), under pmu: taken before mu and wmu, never after.
	pmu         sync.Mutex
	producer    string
	epoch       uint64
	nextSeq     uint64
	pubs        []*outPub // unanswered, in send order
	resendArmed bool
	pubBackoff  time.Duration
}

type frame struct {
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Seq      uint64          `json:"seq"`
	Stream   string          `json:"stream"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data"`
	Result   json.RawMessage `json:"result"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	FirstSeq uint64          `json:"firstSeq"`
}

// Dial connects to a stream URL (ws:// or wss://, path /v1/stream/<name>). The first
// connection is made before it returns; later ones happen in the background.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	const prefix = "/v1/stream/"
	if len(u.Path) <= len(prefix) || u.Path[:len(prefix)] != prefix {
		return nil, fmt.Errorf("stream: %q is not a /v1/stream/<name> URL", rawURL)
	}
	if opts.Group != "" && (opts.From > 0 || opts.Latest) {
		return nil, errors.New("stream: From and Latest do not apply to a Group: the group keeps its own position")
	}
	if opts.Dialer == nil {
		opts.Dialer = websocket.DefaultDialer
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	c := &Conn{url: rawURL, opts: opts, primary: u.Path[len(prefix):], done: make(chan struct{}),
		pending: map[string]chan frame{}, last: map[string]uint64{}, extra: map[string]bool{},
		producer: newProducerID(), pubBackoff: 50 * time.Millisecond}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ws, err := c.dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	go c.run(ws)
	return c, nil
}

// dial opens one connection, resuming where the previous one left off.
func (c *Conn) dial(ctx context.Context) (*websocket.Conn, error) {
	u, _ := url.Parse(c.url)
	q := u.Query()
	c.mu.Lock()
	last, handled := c.last[c.primary]
	c.mu.Unlock()
	switch {
	case c.opts.Group != "":
		q.Set("group", c.opts.Group) // the group keeps the position
	case c.opts.Client != "" && (handled || c.opts.From == 0 && !c.opts.Latest):
		q.Set("client", c.opts.Client) // the server resumes after the last stored ack
	case handled:
		q.Set("from", strconv.FormatUint(last+1, 10))
	case c.opts.Latest:
		q.Set("from", "latest")
	case c.opts.From > 0:
		q.Set("from", strconv.FormatUint(c.opts.From, 10))
	}
	if c.opts.Client != "" {
		q.Set("client", c.opts.Client)
	}
	if c.opts.Window > 0 {
		q.Set("window", strconv.Itoa(c.opts.Window))
	}
	if c.opts.Redelivery > 0 {
		q.Set("redelivery", c.opts.Redelivery.String())
	}
	u.RawQuery = q.Encode()
	h := http.Header{}
	for k, v := range c.opts.Header {
		h[k] = v
	}
	if c.opts.Token != "" {
		h.Set("Authorization", "Bearer "+c.opts.Token)
	}
	ws, resp, err := c.opts.Dialer.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("stream: dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("stream: dial: %w", err)
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		// Close ran while this dial was under way: it found no connection to close.
		c.mu.Unlock()
		_ = ws.Close()
		return nil, ErrClosed
	}
	c.ws = ws
	c.mu.Unlock()
	return ws, nil
}

// run reads until the connection drops, then reconnects, until Close or a close that
// reconnecting cannot mend.
func (c *Conn) run(ws *websocket.Conn) {
	defer close(c.done)
	for first := true; ; first = false {
		if !first {
			c.resendPubs(ws) // what the last connection left unanswered, in order
		}
		c.resubscribe()
		err := c.read(ws)
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation {
			// The server refused this connection's terms (too many consumer groups, say):
			// the same handshake would be refused again.
			if c.opts.OnError != nil {
				c.opts.OnError(&Error{Code: "policy_violation", Message: ce.Text, Stream: c.primary})
			}
			c.cancel()
		}
		c.mu.Lock()
		c.ws = nil
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
		c.mu.Unlock()
		backoff := 50 * time.Millisecond
		for {
			if c.ctx.Err() != nil {
				return
			}
			var err error
			if ws, err = c.dial(c.ctx); err == nil {
				break
			}
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, c.opts.MaxBackoff)
		}
	}
}

// resubscribe restores the streams added with Subscribe after a reconnect.
func (c *Conn) resubscribe() {
	c.mu.Lock()
	var names []string
	for n := range c.extra {
		names = append(names, n)
	}
	c.mu.Unlock()
	for _, n := range names {
		go func() {
			c.mu.Lock()
			last, ok := c.last[n]
			c.mu.Unlock()
			args := map[string]any{"stream": n}
			if ok {
				args["from"] = last + 1
			}
			ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
			defer cancel()
			_, _ = c.Command(ctx, "subscribe", args)
		}()
	}
}

func (c *Conn) read(ws *websocket.Conn) error {
	defer ws.Close()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		var f frame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "message":
			// A group's messages come out of order and each is acked on its own: none is
			// filtered.
			group := c.opts.Group != "" && f.Stream == c.primary
			c.mu.Lock()
			last, seen := c.last[f.Stream]
			dup := !group && seen && f.Seq <= last
			if !dup && !group {
				c.last[f.Stream] = f.Seq
			}
			c.mu.Unlock()
			if !dup && c.opts.Handler != nil {
				c.opts.Handler(Message{Stream: f.Stream, Seq: f.Seq, Time: f.Time, Data: f.Data})
			}
			_ = c.write(ws, map[string]any{"type": "ack", "seq": f.Seq, "stream": f.Stream})
		case "published", "reply", "error":
			if isPubID(f.ID) {
				c.pubAnswer(ws, f)
				continue
			}
			c.mu.Lock()
			ch := c.pending[f.ID]
			delete(c.pending, f.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			} else if f.Type == "error" && c.opts.OnError != nil {
				c.opts.OnError(&Error{ID: f.ID, Code: f.Code, Message: f.Message, Stream: f.Stream, Seq: f.Seq, FirstSeq: f.FirstSeq})
			}
		}
	}
}

func (c *Conn) write(ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return ws.WriteMessage(websocket.TextMessage, b)
}

// request sends a frame with a fresh id and waits for its answer.
func (c *Conn) request(ctx context.Context, f map[string]any) (frame, error) {
	c.mu.Lock()
	ws := c.ws
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return frame{}, ErrClosed
	}
	if ws == nil {
		c.mu.Unlock()
		return frame{}, ErrDisconnected
	}
	c.nextID++
	id := strconv.FormatUint(c.nextID, 10)
	ch := make(chan frame, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	f["id"] = id
	if err := c.write(ws, f); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return frame{}, ErrDisconnected
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return frame{}, ErrDisconnected
		}
		if r.Type == "error" {
			return r, &Error{ID: r.ID, Code: r.Code, Message: r.Message, Stream: r.Stream, Seq: r.Seq, FirstSeq: r.FirstSeq}
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return frame{}, ctx.Err()
	}
}

// Publish appends data (any JSON-encodable value, or a json.RawMessage) to the stream
// and returns its seq once the message is durable. It is stored once however the
// connection fares: an unanswered publish is sent again after a reconnect or a
// publish_failed, with the same producer numbers (publish.go). When ctx ends first,
// Publish returns ctx.Err() and the message is still delivered in the background, once,
// while the Conn is open. An *Error answers a publish the stream refused.
func (c *Conn) Publish(ctx context.Context, data any) (uint64, error) {
	raw, ok := data.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(data)
		if err != nil {
			return 0, fmt.Errorf("stream: publish: %w", err)
		}
		raw = b
	}
	p := &outPub{data: raw, ch: make(chan pubResult, 1)}
	c.pmu.Lock()
	if c.ctx.Err() != nil {
		c.pmu.Unlock()
		return 0, ErrClosed
	}
	p.epoch, p.seq = c.epoch, c.nextSeq
	c.nextSeq++
	c.pubs = append(c.pubs, p)
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		c.sendPub(ws, p) // else on the next connection
	}
	c.pmu.Unlock()
	select {
	case r := <-p.ch:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Command runs a command (getServerInfo, getStreamInfo, subscribe, unsubscribe,
// deleteMessages, getState, putState) and returns its result.
func (c *Conn) Command(ctx context.Context, name string, args any) (json.RawMessage, error) {
	if args == nil {
		args = map[string]any{}
	}
	r, err := c.request(ctx, map[string]any{"type": "command", "command": name, "args": args})
	if err != nil {
		return nil, err
	}
	return r.Result, nil
}

// Subscribe adds stream name to this connection from seq from (0: the server's default),
// and keeps it across reconnects.
func (c *Conn) Subscribe(ctx context.Context, name string, from uint64) error {
	args := map[string]any{"stream": name}
	if from > 0 {
		args["from"] = from
	}
	if _, err := c.Command(ctx, "subscribe", args); err != nil {
		return err
	}
	c.mu.Lock()
	c.extra[name] = true
	c.mu.Unlock()
	return nil
}

// Close closes the connection for good; unanswered publishes fail with ErrClosed.
func (c *Conn) Close() error {
	c.cancel()
	c.failPubs(ErrClosed)
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		c.wmu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = ws.Close()
	}
	<-c.done
	return nil
}
