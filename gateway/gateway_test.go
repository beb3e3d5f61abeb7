package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/runtime"
)

func TestSocketsSurviveEviction(t *testing.T) {
	s := natstest.Server(t)
	h := gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{IdleTimeout: 100 * time.Millisecond})
	f := gwtest.StartGateway(t, s, gateway.Options{})
	alice := gwtest.Dial(t, f, "/room/r1?user=alice")
	gwtest.Expect(t, alice, "joined alice")
	bob := gwtest.Dial(t, f, "/room/r1?user=bob")
	gwtest.Expect(t, bob, "joined bob")
	gwtest.Expect(t, alice, "joined bob")
	natstest.WaitFor(t, "the room to be evicted", 10*time.Second, func() bool { return h.Active() == 0 })
	// The next message re-activates the room with both sockets and their attachments.
	if err := alice.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	gwtest.Expect(t, bob, "alice: hi")
	gwtest.Expect(t, alice, "alice: hi")
	// A close reaches the object, which tells the others.
	_ = bob.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	gwtest.Expect(t, alice, "left bob")
}

func TestSocketsSurviveHostLoss(t *testing.T) {
	s := natstest.Server(t)
	ncA := natstest.Conn(t, s)
	gwtest.StartHost(t, s, ncA, runtime.Options{ID: "a", LeaseTTL: time.Second})
	f := gwtest.StartGateway(t, s, gateway.Options{})
	alice := gwtest.Dial(t, f, "/room/r2?user=alice")
	gwtest.Expect(t, alice, "joined alice")
	// Host a vanishes without handing its lease back, as a killed process would.
	ncA.Close()
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{ID: "b", LeaseTTL: time.Second})
	if err := alice.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	// Delivered once a's lease expires and b activates the room with its sockets.
	gwtest.Expect(t, alice, "alice: still here")
}

func TestGatewayLossClosesItsSockets(t *testing.T) {
	s := natstest.Server(t)
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f1 := gwtest.StartGateway(t, s, gateway.Options{})
	f2 := gwtest.StartGateway(t, s, gateway.Options{})
	alice := gwtest.Dial(t, f1, "/room/r3?user=alice")
	gwtest.Expect(t, alice, "joined alice")
	bob := gwtest.Dial(t, f2, "/room/r3?user=bob")
	gwtest.Expect(t, alice, "joined bob")
	// Messages cross gateways: bob's reaches alice on the other one.
	_ = bob.WriteMessage(websocket.TextMessage, []byte("across"))
	gwtest.Expect(t, alice, "bob: across")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f2.GW.Close(ctx); err != nil {
		t.Fatal(err)
	}
	gwtest.Expect(t, alice, "left bob")
}

func TestHTTPErrorsAndLimits(t *testing.T) {
	s := natstest.Server(t)
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f := gwtest.StartGateway(t, s, gateway.Options{MaxBodyBytes: 100})
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
		req, _ := http.NewRequest(c.method, f.URL+c.path, strings.NewReader(c.body))
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
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f := gwtest.StartGateway(t, s, gateway.Options{APIKeys: []string{"k1", "second-key"}, AllowedOrigins: []string{"https://app.example"}})
	get := func(path string, hdr http.Header) int {
		req, _ := http.NewRequest("GET", f.URL+path, nil)
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
	wsURL := "ws" + strings.TrimPrefix(f.URL, "http") + "/room/r?user=x&token=k1"
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
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{})
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
	f := gwtest.StartGateway(t, s, gateway.Options{
		Routes:     []gateway.Route{{Pattern: "/fn/{name}", Function: edge}},
		Namespaces: map[string]string{"COUNTERS": "Counter"},
		Vars:       map[string]string{"GREETING": "hello"},
	})
	resp, err := http.Post(f.URL+"/fn/c", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(b); got != `hello {"name":"c","value":1} 64` {
		t.Fatalf("got %q", got)
	}
	resp, _ = http.Get(f.URL + "/fn/c")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(b)); got != `{"name":"c","value":1}` {
		t.Fatalf("pass-through got %q", got)
	}
	resp, _ = http.Get(f.URL + "/fn/bad.name")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad name through a function: %d", resp.StatusCode)
	}
}
