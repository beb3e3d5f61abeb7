// Package streamclient is the gateway's one client of the built-in Stream object: a typed
// method per route of its contract (package builtin/stream/streamapi), sent through the
// gateway's object routing (internal/objclient), with one error type for every failure,
// *streamapi.Error, which carries the protocol's error code. It imports the contract,
// objclient and the wire protocol only: never the class, never the runtime.
package streamclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// Sender sends one request to an object and returns its reply; *objclient.Client is one,
// and a gateway passes its own, which bounds each request by its timeout.
type Sender interface {
	Request(ctx context.Context, class, name string, m *nats.Msg) (*nats.Msg, error)
}

var _ Sender = (*objclient.Client)(nil)

// SenderFunc is a function as a Sender.
type SenderFunc func(ctx context.Context, class, name string, m *nats.Msg) (*nats.Msg, error)

// Request calls f.
func (f SenderFunc) Request(ctx context.Context, class, name string, m *nats.Msg) (*nats.Msg, error) {
	return f(ctx, class, name, m)
}

// Client calls Stream objects by stream name. Every method's error is a *streamapi.Error:
// an answer of the object with its status, code and message, or, with Status 0 and Code
// streamapi.CodeUnavailable, a failure to reach it whose cause (objclient's sentinel errors,
// context errors) errors.Is finds through Unwrap. A failure to reach the object after the
// request left may mean it ran: the caller decides whether a retry is safe.
type Client struct{ s Sender }

// New returns a client sending through s.
func New(s Sender) *Client { return &Client{s: s} }

// do sends one request and returns the reply's status and body; an error is a
// *streamapi.Error for the transport only (any status comes back as it is).
func (c *Client) do(ctx context.Context, name, method, uri, ctype string, body []byte) (int, []byte, error) {
	r, err := http.NewRequestWithContext(ctx, method, "http://stream"+uri, bytes.NewReader(body))
	if err != nil {
		return 0, nil, &streamapi.Error{Code: streamapi.CodeInternal, Message: err.Error(), Err: err}
	}
	r.Header.Set("Content-Type", ctype)
	reply, err := c.s.Request(ctx, streamapi.ClassName, name, wire.EncodeRequest("", streamapi.ClassName, name, r, body))
	if err != nil {
		return 0, nil, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: err.Error(), Err: err}
	}
	if e := reply.Header.Get(wire.HdrError); e != "" {
		msg := reply.Header.Get(wire.HdrMessage)
		if msg == "" {
			msg = e
		}
		return 0, nil, &streamapi.Error{Code: streamapi.CodeUnavailable, Message: fmt.Sprintf("stream %q: %s", name, msg)}
	}
	return wire.Status(reply), reply.Data, nil
}

// call is do with a JSON body (v, when not nil) and a JSON answer: a status of 300 or more
// is an error, and a 2xx answer is decoded into out (when not nil).
func (c *Client) call(ctx context.Context, name, method, uri string, v, out any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return &streamapi.Error{Code: streamapi.CodeInternal, Message: err.Error(), Err: err}
		}
	}
	return c.callRaw(ctx, name, method, uri, "application/json", body, out)
}

func (c *Client) callRaw(ctx context.Context, name, method, uri, ctype string, body []byte, out any) error {
	st, data, err := c.do(ctx, name, method, uri, ctype, body)
	if err != nil {
		return err
	}
	if st >= 300 {
		return answerError(st, data)
	}
	return decode(data, out)
}

// answerError is the error an answer of status st (300 or more) stands for.
func answerError(st int, data []byte) *streamapi.Error {
	if e, ok := streamapi.DecodeError(st, data); ok {
		return e
	}
	return &streamapi.Error{Status: st, Code: streamapi.CodeInternal, Message: fmt.Sprintf("stream object answered %d", st)}
}

func decode(data []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &streamapi.Error{Code: streamapi.CodeInternal, Message: "stream object's answer: " + err.Error(), Err: err}
	}
	return nil
}

// Publish appends items (1 to streamapi.MaxBatch) and returns one answer per item, in
// order: a seq, or why that item was not stored.
func (c *Client) Publish(ctx context.Context, name string, items []streamapi.PublishItem) ([]streamapi.Published, error) {
	size := 2
	for _, it := range items {
		size += len(it.ID) + len(it.Data) + 24
		if it.Producer != nil {
			size += len(it.Producer.ID) + 64
		}
	}
	body := streamapi.AppendPublish(make([]byte, 0, size), items)
	var out []streamapi.Published
	if err := c.callRaw(ctx, name, http.MethodPost, streamapi.RoutePublish, "application/json", body, &out); err != nil {
		return nil, err
	}
	if len(out) != len(items) {
		return nil, &streamapi.Error{Code: streamapi.CodeInternal, Message: fmt.Sprintf("stream object answered %d of %d messages", len(out), len(items))}
	}
	return out, nil
}

// Info is the stream's retained range as the object knows it.
func (c *Client) Info(ctx context.Context, name string) (streamapi.Info, error) {
	var i streamapi.Info
	err := c.call(ctx, name, http.MethodGet, streamapi.RouteInfo, nil, &i)
	return i, err
}

// Configure creates the stream's log (readers may then wait on it) and applies retention.
func (c *Client) Configure(ctx context.Context, name string, cfg streamapi.Config) (streamapi.Info, error) {
	var i streamapi.Info
	err := c.call(ctx, name, http.MethodPost, streamapi.RouteConfigure, cfg, &i)
	return i, err
}

// DeleteMessages drops the messages up to and including upTo.
func (c *Client) DeleteMessages(ctx context.Context, name string, upTo uint64) (streamapi.Info, error) {
	var i streamapi.Info
	err := c.call(ctx, name, http.MethodPost, streamapi.RouteDelete, streamapi.Trim{UpTo: &upTo}, &i)
	return i, err
}

// State reads the stream's state document.
func (c *Client) State(ctx context.Context, name string) (streamapi.State, error) {
	var s streamapi.State
	err := c.call(ctx, name, http.MethodGet, streamapi.RouteState, nil, &s)
	return s, err
}

// PutState stores the stream's state document.
func (c *Client) PutState(ctx context.Context, name string, s streamapi.PutState) (streamapi.StateStored, error) {
	var out streamapi.StateStored
	err := c.call(ctx, name, http.MethodPut, streamapi.RouteState, s, &out)
	return out, err
}

// Ack stores durable clients' cumulative acks.
func (c *Client) Ack(ctx context.Context, name string, acks ...streamapi.Ack) error {
	return c.call(ctx, name, http.MethodPost, streamapi.RouteAck, acks, nil)
}

// ClientAck is a durable client's stored ack (seq 0: none).
func (c *Client) ClientAck(ctx context.Context, name, client string) (streamapi.Ack, error) {
	var a streamapi.Ack
	err := c.call(ctx, name, http.MethodGet, streamapi.RouteClient+"?id="+url.QueryEscape(client), nil, &a)
	return a, err
}

// GroupClaim hands a member of a consumer group its next seqs.
func (c *Client) GroupClaim(ctx context.Context, name string, req streamapi.GroupClaim) (streamapi.GroupClaimed, error) {
	var out streamapi.GroupClaimed
	err := c.call(ctx, name, http.MethodPost, streamapi.RouteGroupClaim, req, &out)
	return out, err
}

// GroupAck tells a group its member is done with seqs.
func (c *Client) GroupAck(ctx context.Context, name string, req streamapi.GroupAck) error {
	return c.call(ctx, name, http.MethodPost, streamapi.RouteGroupAck, req, nil)
}

// GroupRelease expires a departing member's claims.
func (c *Client) GroupRelease(ctx context.Context, name string, req streamapi.GroupRelease) error {
	return c.call(ctx, name, http.MethodPost, streamapi.RouteGroupRelease, req, nil)
}

// GroupInfo reads a group's position.
func (c *Client) GroupInfo(ctx context.Context, name, group string) (streamapi.GroupInfo, error) {
	var out streamapi.GroupInfo
	err := c.call(ctx, name, http.MethodGet, streamapi.RouteGroupInfo+"?group="+url.QueryEscape(group), nil, &out)
	return out, err
}
