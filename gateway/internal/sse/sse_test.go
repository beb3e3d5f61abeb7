package sse_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natstest"
)

// TestEventSourceResume: ids name records (and messages of a JSON batch); Last-Event-ID
// resumes after the last one seen, with no gap and no duplicate.
func TestEventSourceResume(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	u := f.URL + "/v1/stream/es-resume"
	js := map[string]string{"Content-Type": "application/json"}
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, u, js, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	for _, b := range []string{`[1,2,3]`, `4`} {
		if st, _, _ := gwtest.DSDo(t, http.MethodPost, u, js, b); st != http.StatusNoContent {
			t.Fatalf("POST: %d", st)
		}
	}
	ids := func(lines []string) (ids, data []string) {
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "id: "); ok {
				ids = append(ids, v)
			}
			if v, ok := strings.CutPrefix(l, "data:"); ok {
				data = append(data, v)
			}
		}
		return
	}
	lines, stop := gwtest.SSELines(t, u, gwtest.AcceptEvents)
	all := gwtest.AwaitLine(t, lines, func(l string) bool { return l == "data:4" })
	stop()
	gotIDs, data := ids(all)
	if !slices.Equal(data, []string{"1", "2", "3", "4"}) || len(gotIDs) != 4 {
		t.Fatalf("first connection: ids %q data %q", gotIDs, data)
	}
	// Resume in the middle of the batch: the rest of it, then the next record.
	lines, _ = gwtest.SSELines(t, u, map[string]string{"Accept": "text/event-stream", "Last-Event-ID": gotIDs[0]})
	if st, _, _ := gwtest.DSDo(t, http.MethodPost, u, js, `5`); st != http.StatusNoContent {
		t.Fatalf("POST: %d", st)
	}
	rest := gwtest.AwaitLine(t, lines, func(l string) bool { return l == "data:5" })
	resIDs, data := ids(rest)
	if !slices.Equal(data, []string{"2", "3", "4", "5"}) || !slices.Equal(resIDs[:3], gotIDs[1:]) {
		t.Fatalf("resumed after %s: ids %q data %q", gotIDs[0], resIDs, data)
	}
	// A malformed Last-Event-ID is refused.
	if st, _, _ := gwtest.DSDo(t, http.MethodGet, u, map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "x"}, ""); st != http.StatusBadRequest {
		t.Fatalf("bad Last-Event-ID: %d", st)
	}
}

// TestSSEHeartbeat: an idle event stream carries heartbeat comments (EventSource and the
// protocol's live=sse).
func TestSSEHeartbeat(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{SSEHeartbeat: 50 * time.Millisecond})
	u := f.URL + "/v1/stream/es-heartbeat"
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, u, map[string]string{"Content-Type": "text/plain"}, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	isHB := func(l string) bool { return strings.HasPrefix(l, ":") }
	lines, _ := gwtest.SSELines(t, u, gwtest.AcceptEvents)
	gwtest.AwaitLine(t, lines, isHB)
	lines, _ = gwtest.SSELines(t, u+"?offset=-1&live=sse", nil)
	gwtest.AwaitLine(t, lines, isHB)
}

// TestSSECluster: sse-cluster's routes: a subscriber shows in /status, POST /channel/{ch}
// and POST /channel (every channel) reach it, and its ids resume with Last-Event-ID.
func TestSSECluster(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	lines, stop := gwtest.SSELines(t, f.URL+"/channel/news", nil)
	natstest.WaitFor(t, "the subscriber in /status", 10*time.Second, func() bool {
		st, _, b := gwtest.DSDo(t, http.MethodGet, f.URL+"/status", nil, "")
		var s struct {
			Channels []struct {
				ID      string `json:"id"`
				Clients int    `json:"clients"`
			} `json:"channels"`
		}
		return st == http.StatusOK && json.Unmarshal([]byte(b), &s) == nil && len(s.Channels) == 1 && s.Channels[0].ID == "news" && s.Channels[0].Clients == 1
	})
	if st, _, b := gwtest.DSDo(t, http.MethodPost, f.URL+"/channel/news", nil, `{"event":"headline","data":"one"}`); st != http.StatusOK {
		t.Fatalf("POST /channel/news: %d %s", st, b)
	}
	got := gwtest.AwaitLine(t, lines, func(l string) bool { return l == "data:one" })
	if !slices.Contains(got, "event: headline") {
		t.Fatalf("no event line: %q", got)
	}
	var firstID string
	for _, l := range got {
		if v, ok := strings.CutPrefix(l, "id: "); ok {
			firstID = v
		}
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, f.URL+"/channel", nil, `{"data":{"n":2}}`); st != http.StatusOK {
		t.Fatalf("POST /channel: %d %s", st, b)
	}
	gwtest.AwaitLine(t, lines, func(l string) bool { return l == `data:{"n":2}` })
	stop()
	if st, _, _ := gwtest.DSDo(t, http.MethodPost, f.URL+"/channel/news", nil, `not json`); st != http.StatusBadRequest {
		t.Fatalf("POST bad body: %d", st)
	}
	// Resume after the first event: the second, not the first again.
	lines, _ = gwtest.SSELines(t, f.URL+"/channel/news", map[string]string{"Last-Event-ID": firstID})
	got = gwtest.AwaitLine(t, lines, func(l string) bool { return strings.HasPrefix(l, "data:") })
	if got[len(got)-1] != `data:{"n":2}` {
		t.Fatalf("resumed after %s: %q", firstID, got)
	}
}

// TestSSEClusterAcrossGateways: /status and POST /channel (every channel) span gateways, as
// the original's gossip did: a subscriber on the second gateway shows in the first's
// /status and gets what is posted to every channel there.
func TestSSEClusterAcrossGateways(t *testing.T) {
	s, _, f1 := gwtest.StartStreams(t, gateway.Options{})
	f2 := gwtest.StartGateway(t, s, gateway.Options{Streams: true, Routes: []gateway.Route{}})
	lines, stop := gwtest.SSELines(t, f2.URL+"/channel/far", nil)
	defer stop()
	var status struct {
		Members  []string `json:"members"`
		Channels []struct {
			ID      string `json:"id"`
			Clients int    `json:"clients"`
		} `json:"channels"`
	}
	natstest.WaitFor(t, "the other gateway's subscriber in /status", 10*time.Second, func() bool {
		st, _, b := gwtest.DSDo(t, http.MethodGet, f1.URL+"/status", nil, "")
		return st == http.StatusOK && json.Unmarshal([]byte(b), &status) == nil &&
			len(status.Channels) == 1 && status.Channels[0].ID == "far" && status.Channels[0].Clients == 1
	})
	want := []string{f1.GW.ID(), f2.GW.ID()}
	slices.Sort(want)
	if !slices.Equal(status.Members, want) {
		t.Fatalf("members %q, want %q", status.Members, want)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, f1.URL+"/channel", nil, `{"data":"to all"}`); st != http.StatusOK {
		t.Fatalf("POST /channel: %d %s", st, b)
	}
	gwtest.AwaitLine(t, lines, func(l string) bool { return l == "data:to all" })
}
