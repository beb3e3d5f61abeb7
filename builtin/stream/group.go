package stream

// Consumer groups: each message of the stream goes to one member of a group; a message
// not acknowledged before its deadline goes to a member again. A group's state is one
// storage key, so its position survives restarts and failover:
//
//	POST /group/claim   {"group","member","max","timeoutMs","reclaim"} -> {"seqs":[..],"retryMs":N}
//	POST /group/ack     {"group","seqs":[..]}                -> {}
//	POST /group/release {"group","member"}                   -> {}
//	GET  /group/info?group=                                  -> {"next":N,"inflight":N}
//
// A stream has at most MaxGroups groups (409 too_many_groups for another).
//
// claim hands out expired claims first (oldest seq first), then seqs never handed out, up
// to max; retryMs (0 when none) is how long until the earliest claim in flight expires, so
// that an idle member knows when to ask again. With "reclaim" it also hands back, with
// new deadlines, the member's own claims still in flight: a member whose previous claim
// got no answer (the object's host died after storing it) asks so, and keeps the seqs it
// does not hold yet instead of leaving them to expire. Expiry is checked at each claim: nothing
// needs a timer while nobody claims. release expires a departing member's claims at once.
// A new group starts at the first retained message.
//
// The state is stored compactly, {"next":N,"members":[..],"claims":[[seq,member,deadline],..]}
// (member: an index into members), and a claim hands out no more than keeps it under
// MaxGroupStateBytes, so that it always fits in one storage value: about 4,000 claims in
// flight per group.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// Group limits.
const (
	// MaxGroupInflight bounds the claims in flight of one group, over all its members.
	MaxGroupInflight = 1 << 16
	// DefaultGroupTimeout is the redelivery timeout when a claim gives none.
	DefaultGroupTimeout = 30 * time.Second
	// MaxGroupStateBytes bounds a group's stored state, below the hosts' default limit of
	// one storage value (128 KiB).
	MaxGroupStateBytes = 100 << 10
	// MaxGroups bounds the groups of one stream (a group's state is never removed).
	MaxGroups = 256
)

// Storage keys: a group's state, and the index of the stream's groups (their names, a
// JSON array: at most MaxGroups × 130 bytes).
const (
	keyGroup  = "group/"
	keyGroups = "groups"
)

// admitGroup adds a new group to the index, refusing it past MaxGroups.
func (s *stream) admitGroup(name string) error {
	var names []string
	if b, ok := s.st.Storage().Get(keyGroups); ok {
		if err := json.Unmarshal(b, &names); err != nil {
			return err
		}
	} else {
		// Groups stored before the index existed.
		for _, e := range s.st.Storage().List(keyGroup, "", MaxGroups+1) {
			names = append(names, strings.TrimPrefix(e.Key, keyGroup))
		}
	}
	if slices.Contains(names, name) {
		return nil
	}
	if len(names) >= MaxGroups {
		return &streamapi.Error{Status: http.StatusConflict, Code: streamapi.CodeTooManyGroups, Message: fmt.Sprintf("the stream has %d consumer groups, the limit", len(names))}
	}
	b, err := json.Marshal(append(names, name))
	if err != nil {
		return err
	}
	return s.st.Storage().Put(keyGroups, b)
}

type groupState struct {
	Next     uint64 // first seq never handed out
	Inflight map[uint64]groupClaim
}

type groupClaim struct {
	Member   string `json:"m"`
	Deadline int64  `json:"d"` // unix ms
}

// storedGroup is a group's stored form. Inflight is the first form, only read.
type storedGroup struct {
	Next     uint64                `json:"next"`
	Members  []string              `json:"members,omitempty"`
	Claims   [][3]int64            `json:"claims,omitempty"` // seq, index in Members, deadline
	Inflight map[uint64]groupClaim `json:"inflight,omitempty"`
}

// claimBytes bounds one claim's bytes in the stored form: "[seq,member,deadline],".
func claimBytes(seq uint64, deadline int64) int {
	return digits(seq) + 5 + digits(uint64(max(deadline, 0))) + 4
}

func digits(n uint64) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// bytes bounds the stored form's size; members holds the names counted.
func (st *groupState) bytes() (n int, members map[string]bool) {
	n = 64 + digits(st.Next)
	members = map[string]bool{}
	for seq, c := range st.Inflight {
		n += claimBytes(seq, c.Deadline)
		if !members[c.Member] {
			members[c.Member] = true
			n += len(c.Member) + 3
		}
	}
	return n, members
}

func (s *stream) groupRoute(r *http.Request) (any, error) {
	var req struct {
		streamapi.GroupClaim
		Seqs []uint64 `json:"seqs"`
	}
	if r.Method == http.MethodGet && r.URL.Path == "/group/info" {
		name := r.URL.Query().Get("group")
		if err := checkClient(name); err != nil {
			return nil, bad(streamapi.CodeBadArgs, "group: %s", err.Error())
		}
		st, err := s.loadGroup(name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"next": st.Next, "inflight": len(st.Inflight)}, nil
	}
	if r.Method != http.MethodPost {
		return nil, notFound(r)
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := checkClient(req.Group); err != nil {
		return nil, bad(streamapi.CodeBadArgs, "group: %s", err.Error())
	}
	_, exists := s.st.Storage().Get(keyGroup + req.Group)
	st, err := s.loadGroup(req.Group)
	if err != nil {
		return nil, err
	}
	if !exists && r.URL.Path != "/group/claim" {
		return struct{}{}, nil // nothing to ack or release: do not create the group
	}
	switch r.URL.Path {
	case "/group/claim":
		if err := checkClient(req.Member); err != nil {
			return nil, bad(streamapi.CodeBadArgs, "member: %s", err.Error())
		}
		if req.Max < 1 || req.Max > streamapi.MaxGroupClaim {
			return nil, bad(streamapi.CodeBadArgs, "max must be 1 to %d", streamapi.MaxGroupClaim)
		}
		timeout := DefaultGroupTimeout
		if req.TimeoutMs > 0 {
			timeout = time.Duration(req.TimeoutMs) * time.Millisecond
		}
		if !exists {
			if err := s.admitGroup(req.Group); err != nil {
				return nil, err
			}
		}
		out := s.claim(st, req.Member, req.Max, timeout, req.Reclaim)
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
	return nil, notFound(r)
}

func (s *stream) loadGroup(name string) (*groupState, error) {
	st := &groupState{Inflight: map[uint64]groupClaim{}}
	b, ok := s.st.Storage().Get(keyGroup + name)
	if !ok {
		return st, nil
	}
	var sg storedGroup
	if err := json.Unmarshal(b, &sg); err != nil {
		return nil, err
	}
	st.Next = sg.Next
	for seq, c := range sg.Inflight {
		st.Inflight[seq] = c
	}
	for _, c := range sg.Claims {
		if c[1] < 0 || c[1] >= int64(len(sg.Members)) || c[0] <= 0 {
			return nil, fmt.Errorf("group %q: stored claim %v names no member", name, c)
		}
		st.Inflight[uint64(c[0])] = groupClaim{Member: sg.Members[c[1]], Deadline: c[2]}
	}
	return st, nil
}

func (s *stream) saveGroup(name string, st *groupState) error {
	sg := storedGroup{Next: st.Next, Claims: make([][3]int64, 0, len(st.Inflight))}
	index := map[string]int64{}
	for seq, c := range st.Inflight {
		i, ok := index[c.Member]
		if !ok {
			i = int64(len(sg.Members))
			index[c.Member] = i
			sg.Members = append(sg.Members, c.Member)
		}
		sg.Claims = append(sg.Claims, [3]int64{int64(seq), i, c.Deadline})
	}
	slices.SortFunc(sg.Claims, func(a, b [3]int64) int { return cmp.Compare(a[0], b[0]) })
	b, err := json.Marshal(sg)
	if err != nil {
		return err
	}
	return s.st.Storage().Put(keyGroup+name, b)
}

func (s *stream) claim(st *groupState, member string, n int, timeout time.Duration, reclaim bool) streamapi.GroupClaimed {
	now := time.Now().UnixMilli()
	deadline := now + timeout.Milliseconds()
	info := s.info()
	st.Next = max64(st.Next, info.FirstSeq, 1)
	out := streamapi.GroupClaimed{Seqs: []uint64{}}
	given := 0 // seqs handed out, besides reclaimed ones
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
		if reclaim && c.Member == member && c.Deadline > now {
			// Its own: outside n, since the member may hold them already.
			st.Inflight[seq] = groupClaim{Member: member, Deadline: deadline}
			out.Seqs = append(out.Seqs, seq)
			continue
		}
		if c.Deadline <= now && given < n {
			st.Inflight[seq] = groupClaim{Member: member, Deadline: deadline}
			out.Seqs = append(out.Seqs, seq)
			given++
		}
	}
	// New claims, as many as keep the stored state within MaxGroupStateBytes.
	size, members := st.bytes()
	if !members[member] {
		size += len(member) + 3
	}
	for given < n && st.Next <= info.LastSeq && len(st.Inflight) < MaxGroupInflight &&
		size+claimBytes(st.Next, deadline) <= MaxGroupStateBytes {
		size += claimBytes(st.Next, deadline)
		st.Inflight[st.Next] = groupClaim{Member: member, Deadline: deadline}
		out.Seqs = append(out.Seqs, st.Next)
		st.Next++
		given++
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
