package gateway_test

import (
	"net/http"
	"testing"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
)

// TestStreamReservedNames: no path creates a stream under the subscription API's prefix
// __ds/: the protocol's PUT, durable-stream's subject, and the subscribe command all
// refuse it as a bad name, and the stream is never created.
func TestStreamReservedNames(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	if st, _, b := gwtest.DSDo(t, http.MethodGet, f.URL+"/stream/__ds/x", nil, ""); st != http.StatusBadRequest {
		t.Fatalf("durable-stream subject __ds/x: %d %s", st, b)
	}
	c := gwtest.DialStream(t, f, "/v1/stream/ok/name")
	r := c.Command("1", "subscribe", map[string]any{"stream": "__ds/x"})
	if r.Type != "error" || r.Code != "bad_name" {
		t.Fatalf("subscribe __ds/x: %+v", r)
	}
	r = c.Command("2", "subscribe", map[string]any{"stream": "__ds"})
	if r.Type != "error" || r.Code != "bad_name" {
		t.Fatalf("subscribe __ds: %+v", r)
	}
	// A name that merely starts with the letters is fine.
	if r := c.Command("3", "subscribe", map[string]any{"stream": "__dsx/y"}); r.Type != "reply" {
		t.Fatalf("subscribe __dsx/y: %+v", r)
	}
}
