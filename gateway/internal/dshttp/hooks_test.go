package dshttp_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
)

// TestStreamHooksGuardHTTP: the hooks that guard WebSocket streams guard the same streams
// over plain HTTP (Durable Streams, EventSource, sse-cluster) too.
func TestStreamHooksGuardHTTP(t *testing.T) {
	l := gwtest.NewHookLog()
	_, _, f := gwtest.StartStreams(t, gateway.Options{APIKeys: []string{"k1", "k2"}, StreamHooks: gwtest.AuthHooks(l)})
	do := func(method, path, key, ctype, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden && method != "HEAD" && !strings.Contains(string(b), `"forbidden"`) {
			t.Fatalf("%s %s: 403 without the JSON error: %s", method, path, b)
		}
		return resp.StatusCode
	}
	cases := []struct {
		method, path, key, ctype, body string
		forbidden                      bool
	}{
		{"PUT", "/v1/stream/secret/a", "k2", "application/json", "", false},
		{"GET", "/v1/stream/secret/a?offset=-1", "k1", "", "", true},
		{"HEAD", "/v1/stream/secret/a", "k1", "", "", true},
		{"GET", "/v1/stream/secret/a?offset=-1", "k2", "", "", false},
		{"PUT", "/v1/stream/ro/x", "k1", "application/json", "", true},
		{"PUT", "/v1/stream/open", "k1", "application/json", "", false},
		{"POST", "/v1/stream/open", "k1", "application/json", `{"say":"forbidden"}`, true},
		{"POST", "/v1/stream/open", "k1", "application/json", `{"say":"hello"}`, false},
		{"POST", "/channel/news", "k1", "application/json", `{"data":"forbidden"}`, true},
		{"POST", "/channel/news", "k1", "application/json", `{"data":"fine"}`, false},
	}
	for _, c := range cases {
		st := do(c.method, c.path, c.key, c.ctype, c.body)
		if (st == http.StatusForbidden) != c.forbidden {
			t.Errorf("%s %s with %s: status %d, forbidden want %v", c.method, c.path, c.key, st, c.forbidden)
		}
	}
	// The refused append stored nothing: one message, the allowed one.
	req, _ := http.NewRequest("GET", f.URL+"/v1/stream/open?offset=-1", nil)
	req.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "forbidden") || !strings.Contains(string(b), "hello") {
		t.Fatalf("stream holds %s", b)
	}
}
