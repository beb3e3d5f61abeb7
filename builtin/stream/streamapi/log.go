package streamapi

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
