package streamclient

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// fake answers every request with status and body, or err, and records what it was sent.
type fake struct {
	status int
	body   string
	err    error
	sent   *nats.Msg
}

func (f *fake) Request(_ context.Context, class, name string, m *nats.Msg) (*nats.Msg, error) {
	f.sent = m
	if f.err != nil {
		return nil, f.err
	}
	return wire.EncodeResponse(f.status, nil, []byte(f.body)), nil
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	f := &fake{err: objclient.ErrTimeout}
	c := New(f)
	_, err := c.Info(ctx, "s")
	var se *streamapi.Error
	if !errors.As(err, &se) || se.Code != streamapi.CodeUnavailable || se.Status != 0 || !errors.Is(err, objclient.ErrTimeout) {
		t.Errorf("a transport failure: %#v", err)
	}
	if f.sent.Header.Get(wire.HdrClass) != streamapi.ClassName || f.sent.Header.Get(wire.HdrURL) != streamapi.RouteInfo {
		t.Errorf("sent %v", f.sent.Header)
	}
	*f = fake{status: 400, body: `{"error":{"code":"bad_args","message":"upTo 9 is beyond the last seq 2"}}`}
	_, err = c.DeleteMessages(ctx, "s", 9)
	if !errors.As(err, &se) || se.Status != 400 || se.Code != streamapi.CodeBadArgs || se.Message != "upTo 9 is beyond the last seq 2" {
		t.Errorf("an error answer: %#v", err)
	}
	*f = fake{status: 502, body: `nonsense`}
	if _, err = c.State(ctx, "s"); !errors.As(err, &se) || se.Status != 502 || se.Code != streamapi.CodeInternal {
		t.Errorf("an answer without an error body: %#v", err)
	}
	*f = fake{status: 200, body: `[{"id":"a","seq":1}]`}
	if _, err = c.Publish(ctx, "s", []streamapi.PublishItem{{ID: "a", Data: []byte("1")}, {ID: "b", Data: []byte("2")}}); !errors.As(err, &se) || se.Code != streamapi.CodeInternal {
		t.Errorf("a short answer: %#v", err)
	}
	if got := string(f.sent.Data); got != `[{"id":"a","data":1},{"id":"b","data":2}]` {
		t.Errorf("publish body %s", got)
	}
}

func TestDSAnswers(t *testing.T) {
	ctx := context.Background()
	f := &fake{status: 404, body: `{"next":0,"message":"no such stream"}`}
	c := New(f)
	rd, ans, err := c.Read(ctx, "s", streamapi.DSReadQuery{From: 3, Touch: true})
	if err != nil || rd != nil || ans.Status != 404 || ans.Code != "" || ans.Message != "no such stream" {
		t.Errorf("a protocol outcome: %v %v %+v", err, rd, ans)
	}
	if got := f.sent.Header.Get(wire.HdrURL); got != "/ds/read?from=3&touch=1" {
		t.Errorf("read URL %s", got)
	}
	*f = fake{status: 413, body: `{"error":{"code":"payload_too_large","message":"big"}}`}
	ans, err = c.Append(ctx, "s", streamapi.DSAppend{Data: []byte("x")})
	if err != nil || ans.Status != 413 || ans.Code != streamapi.CodeTooLarge || ans.Message != "big" {
		t.Errorf("an error answer: %v %+v", err, ans)
	}
	*f = fake{status: http.StatusNotFound, body: `{"error":{"code":"not_found","message":"no such operation"}}`}
	_, err = c.AppendBatch(ctx, "s", []streamapi.DSAppend{{Data: []byte("x")}})
	var se *streamapi.Error
	if !errors.As(err, &se) || se.Status != 404 || se.Code != streamapi.CodeNotFound {
		t.Errorf("a host without batches: %#v", err)
	}
}
