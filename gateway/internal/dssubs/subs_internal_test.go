package dssubs

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDSGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{
		{"events/*", "events/a", true},
		{"events/*", "events/a/b", false},
		{"events/*", "events", false},
		{"events/**", "events", true},
		{"events/**", "events/a/b", true},
		{"**", "x", true},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "a/b/c", false},
		{"*/x", "a/x", true},
		{"*/x", "a/y", false},
	} {
		if got := globMatch(c.p, c.s); got != c.ok {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
	for _, bad := range []string{"", "a//b", "a/b*", "a/./b"} {
		if validPattern(bad) == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	got := globSubjects("p.", "events/**")
	if len(got) != 2 || got[0] != "p.events.>" || got[1] != "p.events" {
		t.Errorf("globSubjects: %q", got)
	}
	if got := globSubjects("p.", "a/*/b"); len(got) != 1 || got[0] != "p.a.*.b" {
		t.Errorf("globSubjects: %q", got)
	}
}

func TestDSWebhookURLPolicy(t *testing.T) {
	for _, c := range []struct {
		url       string
		dev, prod bool
	}{
		{"https://hooks.example.com/x", true, true},
		{"http://hooks.example.com/x", false, false},
		{"http://127.0.0.1:8080/hook", true, false},
		{"http://localhost/hook", true, false},
		{"https://localhost/hook", true, false},
		{"http://10.0.0.1/hook", false, false},
		{"https://10.0.0.1/hook", false, false},
		{"https://192.168.1.1/hook", false, false},
		{"https://169.254.169.254/latest", false, false},
		{"https://100.64.0.1/", false, false},
		{"https://[fd00::1]/", false, false},
		{"https://[::1]/", true, false},
		{"https://user:pw@hooks.example.com/", false, false},
		{"ftp://hooks.example.com/", false, false},
		{"/relative", false, false},
	} {
		if got := checkWebhookURL(c.url, true) == nil; got != c.dev {
			t.Errorf("dev %s: allowed=%v", c.url, got)
		}
		if got := checkWebhookURL(c.url, false) == nil; got != c.prod {
			t.Errorf("production %s: allowed=%v", c.url, got)
		}
	}
}

func TestDSTokens(t *testing.T) {
	sec := &dsSecrets{Seed: make([]byte, 32), MAC: make([]byte, 32)}
	sec.MAC[0] = 1
	if err := sec.init(); err != nil {
		t.Fatal(err)
	}
	s := &dsSub{ID: "a", Created: 7, Generation: 3, WakeID: "w_x"}
	tok := sec.token(s, "cb")
	c, ok := sec.verify(tok)
	if !ok || c.id != "a" || c.created != 7 || c.generation != 3 || c.wakeID != "w_x" || c.kind != "cb" {
		t.Fatalf("verify: %+v %v", c, ok)
	}
	claims, mac, _ := strings.Cut(tok, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte("a|7|4|w_x|cb")) + "." + mac
	for _, bad := range []string{"", tok + "x", claims + ".", forged, "x." + mac} {
		if _, ok := sec.verify(bad); ok {
			t.Errorf("token %q verified", bad)
		}
	}
	for a := 1; a <= 12; a++ {
		d := retryDelay(a)
		base := min(time.Second<<(a-1), time.Minute)
		if d < base*8/10 || d > base*12/10 {
			t.Errorf("retry %d: %v", a, d)
		}
	}
}

// TestWebhookClientDialCheck: without the development exception the client refuses loopback
// at connect time too (what a DNS name resolving inside would meet).
func TestWebhookClientDialCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if _, err := webhookClient(false, time.Second).Post(srv.URL, "application/json", strings.NewReader("{}")); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("production client reached loopback: %v", err)
	}
	res, err := webhookClient(true, time.Second).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("development client: %v", err)
	}
	res.Body.Close()
}
