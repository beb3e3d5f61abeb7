package streamapi

// GroupClaim is the body of POST /group/claim. Max is 1 to MaxGroupClaim; TimeoutMs 0
// means the object's default (30 s). Reclaim also hands back, with new deadlines, the
// member's own claims still in flight.
type GroupClaim struct {
	Group     string `json:"group"`
	Member    string `json:"member"`
	Max       int    `json:"max"`
	TimeoutMs int64  `json:"timeoutMs"`
	Reclaim   bool   `json:"reclaim"`
}

// GroupClaimed answers a claim: the seqs handed out, and how long until the earliest claim
// in flight expires (0 when none).
type GroupClaimed struct {
	Seqs    []uint64 `json:"seqs"`
	RetryMs int64    `json:"retryMs"`
}

// GroupAck is the body of POST /group/ack: the seqs the member is done with.
type GroupAck struct {
	Group string   `json:"group"`
	Seqs  []uint64 `json:"seqs"`
}

// GroupRelease is the body of POST /group/release: the member's claims expire at once.
type GroupRelease struct {
	Group  string `json:"group"`
	Member string `json:"member"`
}

// GroupInfo answers GET /group/info.
type GroupInfo struct {
	Next     uint64 `json:"next"`
	Inflight int    `json:"inflight"`
}

// MaxGroupClaim bounds the seqs of one claim.
const MaxGroupClaim = 4096
