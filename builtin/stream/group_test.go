package stream_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

func TestGroupAPI(t *testing.T) {
	nc := startStreamHost(t)
	steps := []struct{ method, path, body, want string }{
		{"POST", "/configure", `{}`, `200`},
		{"POST", "/group/claim", `{"group":"g","member":"a","max":5}`, `200 {"seqs":[],"retryMs":0}`},
		{"POST", "/publish", `[{"data":1},{"data":2},{"data":3}]`, `200`},
		{"POST", "/group/claim", `{"group":"g","member":"a","max":2,"timeoutMs":60000}`, `200 {"seqs":[1,2],`},
		{"POST", "/group/claim", `{"group":"g","member":"b","max":5,"timeoutMs":60000}`, `200 {"seqs":[3],`},
		{"POST", "/group/claim", `{"group":"g","member":"b","max":5}`, `200 {"seqs":[],`},
		// b lost the answer to its claim: reclaim hands back its own claims (outside max).
		{"POST", "/group/claim", `{"group":"g","member":"b","max":1,"reclaim":true,"timeoutMs":60000}`, `200 {"seqs":[3],`},
		{"POST", "/group/ack", `{"group":"g","seqs":[1]}`, `200 {}`},
		// a leaves: its remaining claim (2) goes to the next claimer.
		{"POST", "/group/release", `{"group":"g","member":"a"}`, `200 {}`},
		{"POST", "/group/claim", `{"group":"g","member":"b","max":5}`, `200 {"seqs":[2],`},
		{"GET", "/group/info?group=g", ``, `200 {"inflight":2,"next":4}`},
		// Another group is independent and starts at the first retained message.
		{"POST", "/delete", `{"upTo":1}`, `200`},
		{"POST", "/group/claim", `{"group":"h","member":"a","max":5,"timeoutMs":1}`, `200 {"seqs":[2,3],`},
		{"POST", "/group/claim", `{"group":"bad name","member":"a","max":5}`, `400`},
		{"POST", "/group/claim", `{"group":"g","member":"a","max":0}`, `400`},
		{"GET", "/group/claim", ``, `404`},
	}
	for i, st := range steps {
		got := call(t, nc, st.method, st.path, st.body)
		if !strings.HasPrefix(got, st.want) {
			t.Fatalf("step %d %s %s: got %s, want %s...", i, st.method, st.path, got, st.want)
		}
	}
	// Expired claims (timeoutMs 1) are handed out again, oldest first: poll, bounded.
	for end := time.Now().Add(5 * time.Second); ; {
		got := call(t, nc, "POST", "/group/claim", `{"group":"h","member":"b","max":1}`)
		if strings.HasPrefix(got, `200 {"seqs":[2],`) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no redelivery: %s", got)
		}
	}
}

// TestGroupStateStaysWithinAValue: a group's claims are one storage value, so a large
// claim (a member with a big window, a long member name) must stop short of the value
// limit instead of failing, and the rest is handed out once acks make room.
func TestGroupStateStaysWithinAValue(t *testing.T) {
	nc := startStreamHost(t)
	const total = 4096
	batch := "[" + strings.Repeat(`{"data":1},`, 1023) + `{"data":1}]`
	for range total / 1024 {
		if got := call(t, nc, "POST", "/publish", batch); !strings.HasPrefix(got, "200") {
			t.Fatalf("publish: %s", got)
		}
	}
	member := strings.Repeat("m", streamapi.MaxClientID)
	claimed := map[uint64]bool{}
	for round := 0; len(claimed) < total; round++ {
		if round > 100 {
			t.Fatalf("%d of %d claimed after 100 rounds", len(claimed), total)
		}
		got := call(t, nc, "POST", "/group/claim", `{"group":"g","member":"`+member+`","max":4096,"timeoutMs":600000}`)
		var res streamapi.GroupClaimed
		if !strings.HasPrefix(got, "200 ") || json.Unmarshal([]byte(got[4:]), &res) != nil || len(res.Seqs) == 0 {
			t.Fatalf("claim in round %d: %s", round, got[:min(len(got), 200)])
		}
		for _, seq := range res.Seqs {
			if claimed[seq] {
				t.Fatalf("seq %d claimed twice", seq)
			}
			claimed[seq] = true
		}
		acks, _ := json.Marshal(map[string]any{"group": "g", "seqs": res.Seqs})
		if got := call(t, nc, "POST", "/group/ack", string(acks)); !strings.HasPrefix(got, "200") {
			t.Fatalf("ack: %s", got)
		}
	}
}

// TestGroupLimit: a stream takes at most MaxGroups groups; acks and releases name no new
// group into being.
func TestGroupLimit(t *testing.T) {
	nc := startStreamHost(t)
	call(t, nc, "POST", "/configure", `{}`)
	for i := range stream.MaxGroups {
		if got := call(t, nc, "POST", "/group/claim", fmt.Sprintf(`{"group":"g%d","member":"a","max":1}`, i)); !strings.HasPrefix(got, "200") {
			t.Fatalf("group %d: %s", i, got)
		}
	}
	for _, path := range []string{"/group/ack", "/group/release"} {
		if got := call(t, nc, "POST", path, `{"group":"other","member":"a","seqs":[1]}`); got != "200 {}" {
			t.Fatalf("%s on a new group: %s", path, got)
		}
	}
	if got := call(t, nc, "POST", "/group/claim", `{"group":"other","member":"a","max":1}`); !strings.HasPrefix(got, `409 {"error":{"code":"too_many_groups"`) {
		t.Fatalf("group %d: %s", stream.MaxGroups+1, got)
	}
	if got := call(t, nc, "POST", "/group/claim", `{"group":"g7","member":"b","max":1}`); !strings.HasPrefix(got, "200") {
		t.Fatalf("an existing group: %s", got)
	}
}
