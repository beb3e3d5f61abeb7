package streamapi

import (
	"strconv"
)

// A stream's log: one JetStream message per record (a WebSocket publish, a Durable
// Streams create, append or close), written by the object and read both by it and, straight
// from JetStream, by every gateway (one feed per stream per gateway). What a Durable
// Streams record is, it says in its headers.
const (
	HdrCreate    = "Ds-Create" // the stream's create record, its first
	HdrClosed    = "Ds-Closed" // the stream is closed with this record
	HdrBatch     = "Ds-Batch"  // the data is a JSON array of this many messages (JSON mode)
	HdrProdID    = "Ds-Producer-Id"
	HdrProdEpoch = "Ds-Producer-Epoch"
	HdrProdSeq   = "Ds-Producer-Seq"
	HdrStreamSeq = "Ds-Stream-Seq"
)

// Offset is the offset of the stream's log seq seq: a fork's offsets continue its
// source's (its create record sits at the fork offset).
func (m *DSMeta) Offset(seq uint64) uint64 {
	if m == nil || m.Fork == nil {
		return seq
	}
	return seq - m.CreateSeq + m.Fork.Offset
}

// Seq is the log seq of offset off, for offsets at or above the stream's first own one.
func (m *DSMeta) Seq(off uint64) uint64 {
	if m == nil || m.Fork == nil {
		return off
	}
	return off - m.Fork.Offset + m.CreateSeq
}

// Offsets as clients see them (Stream-Next-Offset, ?offset=, the SSE control events, the
// subscriptions' cursors): the log seq (DSMeta.Offset), zero-padded to OffsetWidth digits
// so that every offset has the same length and string order is seq order.

// OffsetWidth is the digits of an offset.
const OffsetWidth = 16

// FormatOffset is offset off as clients see it.
func FormatOffset(off uint64) string {
	var b [24]byte
	d := strconv.AppendUint(b[:0], off, 10)
	if len(d) >= OffsetWidth {
		return string(d)
	}
	var out [OffsetWidth]byte
	for i := range out {
		out[i] = '0'
	}
	copy(out[OffsetWidth-len(d):], d)
	return string(out[:])
}

// ParseOffset reads an offset: "-1" (start, offset 0), "now" or a server-minted offset.
func ParseOffset(s string) (seq uint64, now bool, ok bool) {
	switch s {
	case "-1":
		return 0, false, true
	case "now":
		return 0, true, true
	}
	if len(s) != OffsetWidth {
		return 0, false, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, false, err == nil
}
