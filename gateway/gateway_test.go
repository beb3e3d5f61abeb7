package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// room is a test class: sockets named by their attachment, broadcast, and close events.
type room struct{ st objects.State }

var roomClass = objects.Class{Name: "Room", New: func(st objects.State) objects.Object { return &room{st} }}

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

type fixture struct {
	s   *server.Server
	url string
	gw  *Gateway
}

func startHost(t *testing.T, s *server.Server, nc *nats.Conn, opts runtime.Options) *runtime.Host {
	t.Helper()
	opts.Classes = []objects.Class{roomClass, counter.Class}
	return hosttest.Start(t, nc, opts)
}

func startGateway(t *testing.T, s *server.Server, opts Options) *fixture {
	t.Helper()
	return startGatewayWith(t, s, opts, nil)
}

// startGatewayWith is startGateway with a hook that may change the gateway before it
// serves its first request.
func startGatewayWith(t *testing.T, s *server.Server, opts Options, hook func(*Gateway)) *fixture {
	t.Helper()
	if opts.Routes == nil {
		opts.Routes = []Route{
			{Pattern: "/room/{name}", Class: "Room"},
			{Pattern: "/counter/{name...}", Class: "Counter"},
			{Pattern: "/one/{name}", Class: "Counter"},
		}
	}
	gw, err := New(natstest.Conn(t, s), opts)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(gw)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
	})
	natstest.WaitFor(t, "gateway ready", 10*time.Second, gw.Ready)
	return &fixture{s: s, url: srv.URL, gw: gw}
}

func dial(t *testing.T, f *fixture, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http")+path, nil)
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

// expect reads text messages until want arrives, failing on anything else after deadline.
func expect(t *testing.T, c *websocket.Conn, want string) {
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

func TestSocketsSurviveEviction(t *testing.T) {
	s := natstest.Server(t)
	h := startHost(t, s, natstest.Conn(t, s), runtime.Options{IdleTimeout: 100 * time.Millisecond})
	f := startGateway(t, s, Options{})
	alice := dial(t, f, "/room/r1?user=alice")
	expect(t, alice, "joined alice")
	bob := dial(t, f, "/room/r1?user=bob")
	expect(t, bob, "joined bob")
	expect(t, alice, "joined bob")
	natstest.WaitFor(t, "the room to be evicted", 10*time.Second, func() bool { return h.Active() == 0 })
	// The next message re-activates the room with both sockets and their attachments.
	if err := alice.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, "alice: hi")
	expect(t, alice, "alice: hi")
	// A close reaches the object, which tells the others.
	_ = bob.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	expect(t, alice, "left bob")
}

func TestSocketsSurviveHostLoss(t *testing.T) {
	s := natstest.Server(t)
	ncA := natstest.Conn(t, s)
	startHost(t, s, ncA, runtime.Options{ID: "a", LeaseTTL: time.Second})
	f := startGateway(t, s, Options{})
	alice := dial(t, f, "/room/r2?user=alice")
	expect(t, alice, "joined alice")
	// Host a vanishes without handing its lease back, as a killed process would.
	ncA.Close()
	startHost(t, s, natstest.Conn(t, s), runtime.Options{ID: "b", LeaseTTL: time.Second})
	if err := alice.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	// Delivered once a's lease expires and b activates the room with its sockets.
	expect(t, alice, "alice: still here")
}

func TestGatewayLossClosesItsSockets(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f1 := startGateway(t, s, Options{})
	f2 := startGateway(t, s, Options{})
	alice := dial(t, f1, "/room/r3?user=alice")
	expect(t, alice, "joined alice")
	bob := dial(t, f2, "/room/r3?user=bob")
	expect(t, alice, "joined bob")
	// Messages cross gateways: bob's reaches alice on the other one.
	_ = bob.WriteMessage(websocket.TextMessage, []byte("across"))
	expect(t, alice, "bob: across")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f2.gw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, "left bob")
}

func TestHTTPErrorsAndLimits(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f := startGateway(t, s, Options{MaxBodyBytes: 100})
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/counter/a.b", "", 400, "bad_name"},
		{"GET", "/counter/a*", "", 400, "bad_name"},
		{"GET", "/counter/%3E", "", 400, "bad_name"},
		{"GET", "/counter/a//b", "", 400, "bad_name"},
		{"GET", "/counter/" + strings.Repeat("x", 300), "", 400, "bad_name"},
		{"POST", "/counter/ok", strings.Repeat("x", 101), 413, "payload_too_large"},
		{"GET", "/nowhere", "", 404, "not_found"},
		{"POST", "/counter/a/b", "", 200, ""},
		{"POST", "/counter/a%2Fb", "", 200, ""}, // {name...}: the same object as /counter/a/b
		{"POST", "/one/ok", "", 200, ""},
		{"POST", "/one/a%2Fb", "", 400, "bad_name"}, // {name}: one token, never a/b
		{"POST", "/one/a%2F", "", 400, "bad_name"},
		{"POST", "/one/%2F", "", 400, "bad_name"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, f.url+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || e.Error.Code != c.code {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, e.Error.Code, c.status, c.code)
		}
	}
}

func TestAuthAndOrigins(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f := startGateway(t, s, Options{APIKeys: []string{"k1", "second-key"}, AllowedOrigins: []string{"https://app.example"}})
	get := func(path string, hdr http.Header) int {
		req, _ := http.NewRequest("GET", f.url+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/healthz", nil); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
	for _, c := range []struct {
		path string
		hdr  http.Header
		want int
	}{
		{"/counter/a", nil, 401},
		{"/counter/a", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"/counter/a", http.Header{"Authorization": {"Bearer k1x"}}, 401},
		{"/counter/a", http.Header{"Authorization": {"Bearer second-key"}}, 200},
		{"/counter/a?token=k1", nil, 200},
	} {
		if st := get(c.path, c.hdr); st != c.want {
			t.Errorf("%s %v: %d, want %d", c.path, c.hdr, st, c.want)
		}
	}
	wsURL := "ws" + strings.TrimPrefix(f.url, "http") + "/room/r?user=x&token=k1"
	_, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp.StatusCode != 403 {
		t.Fatalf("bad origin: err %v resp %v", err, resp)
	}
	c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://app.example"}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	c.Close()
}

func TestFunctionsReachObjects(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, natstest.Conn(t, s), runtime.Options{})
	edge := functions.HandlerFunc(func(w http.ResponseWriter, r *http.Request, env functions.Env) {
		ns := env.Namespace("COUNTERS")
		stub, err := ns.Get(r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if r.Method == "GET" {
			stub.ServeHTTP(w, r) // pass-through
			return
		}
		req, _ := http.NewRequest("POST", "/", nil)
		resp, err := stub.Fetch(r.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), 503)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		greeting, _ := env.Var("GREETING")
		fmt.Fprintf(w, "%s %s %d", greeting, strings.TrimSpace(string(b)), len(ns.NewUniqueName()))
	})
	f := startGateway(t, s, Options{
		Routes:     []Route{{Pattern: "/fn/{name}", Function: edge}},
		Namespaces: map[string]string{"COUNTERS": "Counter"},
		Vars:       map[string]string{"GREETING": "hello"},
	})
	resp, err := http.Post(f.url+"/fn/c", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(b); got != `hello {"name":"c","value":1} 64` {
		t.Fatalf("got %q", got)
	}
	resp, _ = http.Get(f.url + "/fn/c")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(b)); got != `{"name":"c","value":1}` {
		t.Fatalf("pass-through got %q", got)
	}
	resp, _ = http.Get(f.url + "/fn/bad.name")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad name through a function: %d", resp.StatusCode)
	}
}

func TestClientAddress(t *testing.T) {
	g := &Gateway{}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 1.2.3.4")
	if got := g.clientAddr(r); got != "10.1.2.3" {
		t.Fatalf("untrusted header used: %q", got)
	}
	g.opts.TrustedProxyHeader = "X-Forwarded-For"
	if got := g.clientAddr(r); got != "1.2.3.4" {
		t.Fatalf("trusted header: %q", got)
	}
}
