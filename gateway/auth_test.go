package gateway

import (
	"net/http/httptest"
	"testing"
)

// TestBearerToken: the Authorization scheme is case-insensitive (RFC 9110), the key is not.
func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer k": "k", "bearer k": "k", "BEARER k": "k", "BeArEr   k": "k", " Bearer k ": "k",
		"Basic k": "", "Bearerk": "", "Bearer": "", "": "",
	} {
		got, ok := bearerToken(h)
		if ok != (want != "") || got != want {
			t.Errorf("bearerToken(%q) = %q, %v; want %q", h, got, ok, want)
		}
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
