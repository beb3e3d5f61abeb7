package gateway

import (
	"net/http/httptest"
	"testing"
)

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
