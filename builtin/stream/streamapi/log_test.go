package streamapi_test

import (
	"testing"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// TestOffsets: an offset is its seq in 16 digits, so offsets sort as strings; a client's
// offset is one the server minted, "-1" or "now".
func TestOffsets(t *testing.T) {
	for _, off := range []uint64{0, 1, 42, 1<<53 - 1, 9999999999999999} {
		s := streamapi.FormatOffset(off)
		if len(s) != streamapi.OffsetWidth {
			t.Errorf("FormatOffset(%d) = %q", off, s)
		}
		if got, now, ok := streamapi.ParseOffset(s); !ok || now || got != off {
			t.Errorf("ParseOffset(%q) = %d, %v, %v", s, got, now, ok)
		}
	}
	if streamapi.FormatOffset(9) >= streamapi.FormatOffset(10) {
		t.Error("offsets do not sort as strings")
	}
	for s, want := range map[string]struct {
		off     uint64
		now, ok bool
	}{"-1": {0, false, true}, "now": {0, true, true}, "1": {}, "00000000000000001x": {}, "": {}, "+000000000000001": {}} {
		off, now, ok := streamapi.ParseOffset(s)
		if off != want.off || now != want.now || ok != want.ok {
			t.Errorf("ParseOffset(%q) = %d, %v, %v", s, off, now, ok)
		}
	}
}
