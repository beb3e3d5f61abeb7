package streamhub

import (
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/holdfast/holdfast/streams"
)

// TestTransformDropsMarkers: every WebSocket reader builds its frames through
// Hooks.Transform, which drops a record without data (streamapi.IsMessage) before the
// Transform hook sees it, as it drops a message the hook refuses.
func TestTransformDropsMarkers(t *testing.T) {
	var seen []uint64
	g := NewHooks(streams.Hooks{Transform: func(stream string, seq uint64, data json.RawMessage) (json.RawMessage, bool) {
		seen = append(seen, seq)
		return data, true
	}}, slog.Default(), nil)
	if out, keep := g.Transform("s", 1, nil); keep || out != nil {
		t.Fatalf("a marker: %q %v", out, keep)
	}
	if out, keep := g.Transform("s", 2, []byte(`{"a":1}`)); !keep || string(out) != `{"a":1}` {
		t.Fatalf("a message: %q %v", out, keep)
	}
	if !slices.Equal(seen, []uint64{2}) {
		t.Fatalf("the hook saw %v, want only the message", seen)
	}
}
