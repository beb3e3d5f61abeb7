package wire

import "testing"

// TestSizes: a batch of BatchBytes plus its overhead fits an event, and an event fits a
// record of the room whatever max_payload is.
func TestSizes(t *testing.T) {
	for _, c := range []struct {
		payload              int64
		room, event, batchSz int
	}{
		{1 << 20, 960 << 10, 240 << 10, 120 << 10},
		{8 << 20, 8<<20 - 64<<10, (8<<20 - 64<<10) / 4, (8<<20 - 64<<10) / 8},
		{64 << 10, 64 << 10, 16 << 10, 8 << 10}, // tiny: the room's floor
	} {
		if r, e, b := PayloadRoom(c.payload), MaxEventBytes(c.payload), BatchBytes(c.payload); r != c.room || e != c.event || b != c.batchSz {
			t.Errorf("max_payload %d: room %d, event %d, batch %d; want %d, %d, %d", c.payload, r, e, b, c.room, c.event, c.batchSz)
		}
		if MaxEventBytes(c.payload)*2 > PayloadRoom(c.payload) {
			t.Errorf("max_payload %d: an event of %d does not fit half a record", c.payload, MaxEventBytes(c.payload))
		}
	}
}
