package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

// TestCORS: on every surface (an object route, a function route, /v1/stream, a mount such
// as /v1/files) a preflight from an allowed origin gets 204 and the Access-Control-*
// headers without an API key; one from another origin 403 without them; real
// cross-origin requests still need the key, and only allowed origins see CORS headers.
func TestCORS(t *testing.T) {
	s := natstest.Server(t)
	hosttest.Start(t, natstest.Conn(t, s), runtime.Options{Classes: []objects.Class{counter.Class, stream.Class}})
	fnCalls := 0
	fn := functions.HandlerFunc(func(w http.ResponseWriter, r *http.Request, _ functions.Env) {
		fnCalls++
		io.WriteString(w, "fn "+r.Method)
	})
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Meta-Owner", "alice")
		io.WriteString(w, "file")
	})
	f := gwtest.StartGateway(t, s, gateway.Options{
		APIKeys:        []string{"k1"},
		AllowedOrigins: []string{"https://app.example"},
		Streams:        true,
		Routes:         []gateway.Route{{Pattern: "/counter/{name}", Class: "Counter"}, {Pattern: "/fn/{x}", Function: fn}},
		Mounts:         map[string]http.Handler{"/v1/files/": files},
	})
	do := func(method, path string, hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(method, f.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	for _, path := range []string{"/counter/a", "/fn/x", "/v1/stream/s", "/v1/files/files/k", "/nowhere"} {
		t.Run(path, func(t *testing.T) {
			resp, body := do("OPTIONS", path, map[string]string{"Origin": "https://app.example",
				"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
			h := resp.Header
			if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				h.Get("Access-Control-Allow-Headers") != "authorization, content-type" || h.Get("Access-Control-Max-Age") == "" ||
				!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Fatalf("allowed preflight: %s %v %q", resp.Status, h, body)
			}
			resp, body = do("OPTIONS", path, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
			if resp.StatusCode != 403 || !strings.Contains(body, `"forbidden"`) {
				t.Fatalf("refused preflight: %s %q", resp.Status, body)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Fatalf("refused preflight has %s", k)
				}
			}
			// The real request: from the allowed origin without the key, refused, yet
			// readable by the page (it has the CORS headers); with it, served.
			resp, _ = do("GET", path, map[string]string{"Origin": "https://app.example"})
			if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
				t.Fatalf("no key: %s %v", resp.Status, resp.Header)
			}
			resp, _ = do("GET", path, map[string]string{"Origin": "https://app.example", "Authorization": "bearer k1"})
			if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
				!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "*") {
				t.Fatalf("with the key: %s %v", resp.Status, resp.Header)
			}
			resp, _ = do("GET", path, map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer k1"})
			if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Expose-Headers") != "" {
				t.Fatalf("another origin got CORS headers: %v", resp.Header)
			}
		})
	}
	if fnCalls == 0 {
		t.Fatal("the function never ran")
	}
	before := fnCalls
	do("OPTIONS", "/fn/x", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"})
	if fnCalls != before {
		t.Fatal("a preflight reached the function")
	}
	// An OPTIONS that is not a preflight is a request like any other: it needs the key.
	if resp, _ := do("OPTIONS", "/fn/x", nil); resp.StatusCode != 401 {
		t.Fatalf("plain OPTIONS without a key: %s", resp.Status)
	}
	if resp, body := do("OPTIONS", "/fn/x", map[string]string{"Authorization": "Bearer k1"}); resp.StatusCode != 200 || body != "fn OPTIONS" {
		t.Fatalf("plain OPTIONS: %s %q", resp.Status, body)
	}
}

// TestBearerScheme: the Authorization scheme is case-insensitive (RFC 9110), the key is not
// (internal/bearer: TestToken).
func TestBearerScheme(t *testing.T) {
	s := natstest.Server(t)
	gwtest.StartHost(t, s, natstest.Conn(t, s), runtime.Options{})
	f := gwtest.StartGateway(t, s, gateway.Options{APIKeys: []string{"Key1"}})
	for auth, want := range map[string]int{"bearer Key1": 200, "BEARER Key1": 200, "Bearer key1": 401, "Basic Key1": 401} {
		req, _ := http.NewRequest("POST", f.URL+"/counter/a", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization: %s → %d, want %d", auth, resp.StatusCode, want)
		}
	}
}
