// Package gwtest starts gateways for tests: an embedded nats-server, object hosts (the
// Room and Counter test classes, the Stream class) and gateways serving on loopback, and
// the clients the gateway's tests speak to them with (WebSocket streams, durable-stream,
// group members, Durable Streams HTTP, event streams).
//
// It is imported by tests only (of package gateway and its sub-packages, as external test
// packages): it hosts object classes and the runtime, which the gateway itself must never
// link (TestImports exempts this package alone).
package gwtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/objclient"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Room is a test class: sockets named by their attachment, broadcast, and close events.
type room struct{ st objects.State }

// RoomClass is the Room test class StartHost serves.
var RoomClass = objects.Class{Name: "Room", New: func(st objects.State) objects.Object { return &room{st} }}

func (r *room) Fetch(w http.ResponseWriter, req *http.Request) {
	user := req.URL.Query().Get("user")
	if _, err := r.st.Sockets().Accept(w, req, objects.SocketOptions{Tags: []string{"members"}, Attachment: []byte(user)}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_ = r.st.Sockets().Broadcast("members", []byte("joined "+user))
}

func (r *room) SocketMessage(ctx context.Context, s objects.Socket, m objects.Message) error {
	return r.st.Sockets().Broadcast("", []byte(string(s.Attachment())+": "+string(m.Data)))
}

func (r *room) SocketClose(ctx context.Context, s objects.Socket, code int, reason string) error {
	return r.st.Sockets().Broadcast("", []byte("left "+string(s.Attachment())))
}

// Fixture is one gateway serving on loopback.
type Fixture struct {
	S   *server.Server
	URL string
	GW  *gateway.Gateway
}

// StartHost starts an object host on nc serving the Room and Counter classes.
func StartHost(t *testing.T, s *server.Server, nc *nats.Conn, opts runtime.Options) *runtime.Host {
	t.Helper()
	opts.Classes = []objects.Class{RoomClass, counter.Class}
	return hosttest.Start(t, nc, opts)
}

// StartGateway starts a gateway on s, by default with routes to Room (/room/{name}) and
// Counter (/counter/{name...}, /one/{name}), and waits until it is ready.
func StartGateway(t *testing.T, s *server.Server, opts gateway.Options) *Fixture {
	t.Helper()
	if opts.Routes == nil {
		opts.Routes = []gateway.Route{
			{Pattern: "/room/{name}", Class: "Room"},
			{Pattern: "/counter/{name...}", Class: "Counter"},
			{Pattern: "/one/{name}", Class: "Counter"},
		}
	}
	gw, err := gateway.New(natstest.Conn(t, s), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
	})
	natstest.WaitFor(t, "gateway ready", 10*time.Second, gw.Ready)
	return &Fixture{S: s, URL: srv.URL, GW: gw}
}

// StartStreamHost starts a host serving the Stream class.
func StartStreamHost(t *testing.T, s *server.Server, id string) *runtime.Host {
	t.Helper()
	return hosttest.Start(t, natstest.Conn(t, s), runtime.Options{ID: id, Classes: []objects.Class{stream.Class}})
}

// StartStreams starts a server, a Stream host and a gateway serving streams only.
func StartStreams(t *testing.T, opts gateway.Options) (*server.Server, *runtime.Host, *Fixture) {
	t.Helper()
	s := natstest.Server(t)
	h := StartStreamHost(t, s, "h1")
	opts.Streams = true
	opts.Routes = []gateway.Route{}
	return s, h, StartGateway(t, s, opts)
}

// StreamClient is a typed client of the Stream objects on f's server, for tests that look
// at an object's state directly (a group's, a durable client's ack).
func (f *Fixture) StreamClient(t *testing.T) *streamclient.Client {
	t.Helper()
	return streamclient.New(f.Sender(t))
}

// Sender sends requests to the objects on f's server, routed as a gateway routes them,
// through a connection of its own.
func (f *Fixture) Sender(t *testing.T) streamclient.Sender {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nc := natstest.Conn(t, f.S)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cluster.Bind(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := objclient.WatchOwners(ctx, objclient.WatchConfig{Leases: res.Leases, Hosts: res.Hosts})
	if err != nil {
		t.Fatal(err)
	}
	return objclient.New(nc, owners)
}

// Dial opens a WebSocket to path on f.
func Dial(t *testing.T, f *Fixture, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.URL, "http")+path, nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial %s: %v %s", path, err, body)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Expect reads text messages until want arrives, failing on anything else after deadline.
func Expect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if string(m) == want {
			return
		}
	}
}

// RecvN receives n values from ch within 20 s; ch closing first fails the test.
func RecvN[T any](t *testing.T, ch <-chan T, n int) []T {
	t.Helper()
	var out []T
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("connection closed after %v", out)
			}
			out = append(out, v)
		case <-timeout:
			t.Fatalf("got %v, want %d", out, n)
		}
	}
	return out
}
