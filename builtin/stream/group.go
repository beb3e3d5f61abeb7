package stream

// Consumer groups: each message of the stream goes to one member of a group; a message
// not acknowledged before its deadline goes to a member again. A group's state is one
// storage key, so its position survives restarts and failover:
//
//	POST /group/claim   {"group","member","max","timeoutMs"} -> {"seqs":[..],"retryMs":N}
//	POST /group/ack     {"group","seqs":[..]}                -> {}
//	POST /group/release {"group","member"}                   -> {}
//	GET  /group/info?group=                                  -> {"next":N,"inflight":N}
//
// claim hands out expired claims first (oldest seq first), then seqs never handed out, up
// to max; retryMs (0 when none) is how long until the earliest claim in flight expires, so
// that an idle member knows when to ask again. Expiry is checked at each claim: nothing
// needs a timer while nobody claims. release expires a departing member's claims at once.
// A new group starts at the first retained message.

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Group limits.
const (
	// MaxGroupClaim bounds the seqs of one claim.
	MaxGroupClaim = 4096
	// MaxGroupInflight bounds the claims in flight of one group, over all its members.
	MaxGroupInflight = 1 << 16
	// DefaultGroupTimeout is the redelivery timeout when a claim gives none.
	DefaultGroupTimeout = 30 * time.Second
)

const keyGroup = "group/"

// GroupClaim is the body of POST /group/claim.
type GroupClaim struct {
	Group     string `json:"group"`
	Member    string `json:"member"`
	Max       int    `json:"max"`
	TimeoutMs int64  `json:"timeoutMs"`
}

// GroupClaimed is its answer.
type GroupClaimed struct {
	Seqs    []uint64 `json:"seqs"`
	RetryMs int64    `json:"retryMs"`
}

type groupState struct {
	Next     uint64                `json:"next"` // first seq never handed out
	Inflight map[uint64]groupClaim `json:"inflight"`
}

type groupClaim struct {
	Member   string `json:"m"`
	Deadline int64  `json:"d"` // unix ms
}

func (s *stream) groupRoute(r *http.Request) (any, error) {
	var req struct {
		GroupClaim
		Seqs []uint64 `json:"seqs"`
	}
	if r.Method == http.MethodGet && r.URL.Path == "/group/info" {
		name := r.URL.Query().Get("group")
		if err := checkClient(name); err != nil {
			return nil, bad("bad_args", "group: %s", err.Error())
		}
		st, err := s.loadGroup(name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"next": st.Next, "inflight": len(st.Inflight)}, nil
	}
	if r.Method != http.MethodPost {
		return nil, &apiError{http.StatusNotFound, "not_found", "no such operation: " + r.Method + " " + r.URL.Path}
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := checkClient(req.Group); err != nil {
		return nil, bad("bad_args", "group: %s", err.Error())
	}
	st, err := s.loadGroup(req.Group)
	if err != nil {
		return nil, err
	}
	switch r.URL.Path {
	case "/group/claim":
		if err := checkClient(req.Member); err != nil {
			return nil, bad("bad_args", "member: %s", err.Error())
		}
		if req.Max < 1 || req.Max > MaxGroupClaim {
			return nil, bad("bad_args", "max must be 1 to %d", MaxGroupClaim)
		}
		timeout := DefaultGroupTimeout
		if req.TimeoutMs > 0 {
			timeout = time.Duration(req.TimeoutMs) * time.Millisecond
		}
		out := s.claim(st, req.Member, req.Max, timeout)
		return out, s.saveGroup(req.Group, st)
	case "/group/ack":
		for _, seq := range req.Seqs {
			delete(st.Inflight, seq)
		}
		return struct{}{}, s.saveGroup(req.Group, st)
	case "/group/release":
		for seq, c := range st.Inflight {
			if c.Member == req.Member {
				c.Deadline = 0
				st.Inflight[seq] = c
			}
		}
		return struct{}{}, s.saveGroup(req.Group, st)
	}
	return nil, &apiError{http.StatusNotFound, "not_found", "no such operation: " + r.Method + " " + r.URL.Path}
}

func (s *stream) loadGroup(name string) (*groupState, error) {
	st := &groupState{}
	if b, ok := s.st.Storage().Get(keyGroup + name); ok {
		if err := json.Unmarshal(b, st); err != nil {
			return nil, err
		}
	}
	if st.Inflight == nil {
		st.Inflight = map[uint64]groupClaim{}
	}
	return st, nil
}

func (s *stream) saveGroup(name string, st *groupState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.st.Storage().Put(keyGroup+name, b)
}

func (s *stream) claim(st *groupState, member string, n int, timeout time.Duration) GroupClaimed {
	now := time.Now().UnixMilli()
	deadline := now + timeout.Milliseconds()
	info := s.info()
	st.Next = max64(st.Next, info.FirstSeq, 1)
	out := GroupClaimed{Seqs: []uint64{}}
	// Expired claims first, oldest first; claims on messages no longer retained go.
	seqs := make([]uint64, 0, len(st.Inflight))
	for seq := range st.Inflight {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		c := st.Inflight[seq]
		if seq < info.FirstSeq {
			delete(st.Inflight, seq)
			continue
		}
		if c.Deadline <= now && len(out.Seqs) < n {
			st.Inflight[seq] = groupClaim{Member: member, Deadline: deadline}
			out.Seqs = append(out.Seqs, seq)
		}
	}
	for len(out.Seqs) < n && st.Next <= info.LastSeq && len(st.Inflight) < MaxGroupInflight {
		st.Inflight[st.Next] = groupClaim{Member: member, Deadline: deadline}
		out.Seqs = append(out.Seqs, st.Next)
		st.Next++
	}
	first := true
	for _, c := range st.Inflight {
		if first || c.Deadline-now < out.RetryMs {
			out.RetryMs, first = max(c.Deadline-now, 1), false
		}
	}
	return out
}

func max64(a ...uint64) uint64 {
	m := a[0]
	for _, v := range a[1:] {
		m = max(m, v)
	}
	return m
}
