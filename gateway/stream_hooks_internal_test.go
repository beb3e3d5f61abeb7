package gateway

import (
	"encoding/json"
	"github.com/holdfast/holdfast/streams"
	"slices"
	"testing"
)

// TestTransformDropsMarkers: every WebSocket reader builds its frames through
// Gateway.transform, which drops a record without data (streamapi.IsMessage) before the
// Transform hook sees it, as it drops a message the hook refuses.
func TestTransformDropsMarkers(t *testing.T) {
	var seen []uint64
	g := &Gateway{opts: Options{StreamHooks: streams.Hooks{Transform: func(stream string, seq uint64, data json.RawMessage) (json.RawMessage, bool) {
		seen = append(seen, seq)
		return data, true
	}}}}
	if out, keep := g.transform("s", 1, nil); keep || out != nil {
		t.Fatalf("a marker: %q %v", out, keep)
	}
	if out, keep := g.transform("s", 2, []byte(`{"a":1}`)); !keep || string(out) != `{"a":1}` {
		t.Fatalf("a message: %q %v", out, keep)
	}
	if !slices.Equal(seen, []uint64{2}) {
		t.Fatalf("the hook saw %v, want only the message", seen)
	}
}
