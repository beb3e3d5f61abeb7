package dshttp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/httperr"
)

// TestDSTwoGateways: a record appended through one gateway reaches an SSE reader and a
// long-poll reader on another.
func TestDSTwoGateways(t *testing.T) {
	s, _, f1 := gwtest.StartStreams(t, gateway.Options{LongPollTimeout: 20 * time.Second})
	f2 := gwtest.StartGateway(t, s, gateway.Options{Streams: true, Routes: []gateway.Route{}, LongPollTimeout: 20 * time.Second})
	u1, u2 := f1.URL+"/v1/stream/two-gw", f2.URL+"/v1/stream/two-gw"
	st, h, _ := gwtest.DSDo(t, http.MethodPut, u1, map[string]string{"Content-Type": "text/plain"}, "first")
	if st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	tail := h.Get("Stream-Next-Offset")
	lines, _ := gwtest.SSELines(t, u2+"?offset="+tail+"&live=sse", nil)
	gwtest.AwaitLine(t, lines, func(l string) bool { return strings.Contains(l, `"upToDate":true`) })
	type lp struct {
		st   int
		body string
	}
	got := make(chan lp, 1)
	go func() {
		res, err := http.Get(u2 + "?offset=" + tail + "&live=long-poll")
		if err != nil {
			got <- lp{st: -1, body: err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- lp{res.StatusCode, string(b)}
	}()
	if st, _, _ := gwtest.DSDo(t, http.MethodPost, u1, map[string]string{"Content-Type": "text/plain"}, "across"); st != http.StatusNoContent {
		t.Fatalf("POST: %d", st)
	}
	gwtest.AwaitLine(t, lines, func(l string) bool { return l == "data:across" })
	select {
	case r := <-got:
		if r.st != http.StatusOK || r.body != "across" {
			t.Fatalf("long-poll on the other gateway: %d %q", r.st, r.body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long-poll did not answer")
	}
}

// TestDSMalformed: every malformed request gets its documented status and writes nothing.
func TestDSMalformed(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{LongPollTimeout: 200 * time.Millisecond})
	base := f.URL + "/v1/stream/"
	text := map[string]string{"Content-Type": "text/plain"}
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, base+"mal", text, "seed"); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, base+"mal-json", map[string]string{"Content-Type": "application/json"}, "[1]"); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	if st, _, _ := gwtest.DSDo(t, http.MethodPost, base+"mal", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "1", "Producer-Seq": "0"}, "x"); st != http.StatusOK {
		t.Fatalf("producer POST: %d", st)
	}
	tailOf := func(name string) string {
		st, h, _ := gwtest.DSDo(t, http.MethodHead, base+name, nil, "")
		if st != http.StatusOK {
			return "absent"
		}
		return h.Get("Stream-Next-Offset")
	}
	big := strings.Repeat("x", 4<<20+1) // one byte over the 4 MiB one append may carry
	cases := []struct {
		name, method, stream, query string
		hdr                         map[string]string
		body                        string
		want                        int
		code                        string // the error body's
	}{
		{"PUT bad TTL", "PUT", "new1", "", map[string]string{"Stream-TTL": "abc"}, "", 400, "bad_request"},
		{"PUT TTL with leading zero", "PUT", "new1", "", map[string]string{"Stream-TTL": "01"}, "", 400, "bad_request"},
		{"PUT TTL and Expires-At", "PUT", "new1", "", map[string]string{"Stream-TTL": "5", "Stream-Expires-At": "2099-01-01T00:00:00Z"}, "", 400, "bad_request"},
		{"PUT bad Expires-At", "PUT", "new1", "", map[string]string{"Stream-Expires-At": "tomorrow"}, "", 400, "bad_request"},
		{"PUT bad Content-Type", "PUT", "new1", "", map[string]string{"Content-Type": ";;"}, "", 400, "bad_request"},
		{"PUT invalid JSON", "PUT", "new1", "", map[string]string{"Content-Type": "application/json"}, "{", 400, "bad_json"},
		{"PUT body too large", "PUT", "new1", "", text, big, 413, "payload_too_large"},
		{"PUT sub-offset without source", "PUT", "new1", "", map[string]string{"Stream-Fork-Sub-Offset": "0"}, "", 400, "bad_request"},
		{"PUT fork offset without source", "PUT", "new1", "", map[string]string{"Stream-Fork-Offset": "0000000000000001"}, "", 400, "bad_request"},
		{"PUT fork of a missing stream", "PUT", "new1", "", map[string]string{"Stream-Forked-From": "/v1/stream/nope"}, "", 404, "not_found"},
		{"PUT fork malformed offset", "PUT", "new1", "", map[string]string{"Stream-Forked-From": "/v1/stream/mal", "Stream-Fork-Offset": "xyz"}, "", 400, "bad_request"},
		{"PUT fork past the tail", "PUT", "new1", "", map[string]string{"Stream-Forked-From": "/v1/stream/mal", "Stream-Fork-Offset": "9999999999999999"}, "", 400, "bad_request"},
		{"PUT fork bad sub-offset", "PUT", "new1", "", map[string]string{"Stream-Forked-From": "/v1/stream/mal", "Stream-Fork-Offset": "-1", "Stream-Fork-Sub-Offset": "+1"}, "", 400, "bad_request"},
		{"PUT fork sub-offset overshoot", "PUT", "new1", "", map[string]string{"Stream-Forked-From": "/v1/stream/mal", "Stream-Fork-Offset": "-1", "Stream-Fork-Sub-Offset": "99"}, "", 400, "bad_request"},
		{"PUT fork content type mismatch", "PUT", "new1", "", map[string]string{"Stream-Forked-From": "/v1/stream/mal", "Content-Type": "application/json"}, "", 409, "content_type_mismatch"},
		{"PUT other config", "PUT", "mal", "", map[string]string{"Content-Type": "application/json"}, "", 409, "conflict"},
		{"POST empty body", "POST", "mal", "", text, "", 400, "bad_request"},
		{"POST no Content-Type", "POST", "mal", "", nil, "x", 400, "bad_request"},
		{"POST wrong Content-Type", "POST", "mal", "", map[string]string{"Content-Type": "application/json"}, "1", 409, "content_type_mismatch"},
		{"POST invalid JSON", "POST", "mal-json", "", map[string]string{"Content-Type": "application/json"}, "{", 400, "bad_json"},
		{"POST empty JSON array", "POST", "mal-json", "", map[string]string{"Content-Type": "application/json"}, "[]", 400, "bad_request"},
		{"POST producer id alone", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p"}, "x", 400, "bad_request"},
		{"POST producer epoch not a number", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "a", "Producer-Seq": "0"}, "x", 400, "bad_request"},
		{"POST producer seq past 2^53", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "1", "Producer-Seq": "9007199254740992"}, "x", 400, "bad_request"},
		{"POST stale producer epoch", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, "x", 403, "stale_producer_epoch"},
		{"POST producer seq gap", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "1", "Producer-Seq": "5"}, "x", 409, "producer_seq_gap"},
		{"POST new epoch not at 0", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "2", "Producer-Seq": "1"}, "x", 400, "bad_producer"},
		{"POST body too large", "POST", "mal", "", text, big, 413, "payload_too_large"},
		{"POST to a missing stream", "POST", "nope", "", text, "x", 404, "not_found"},
		{"GET malformed offset", "GET", "mal", "?offset=12", nil, "", 400, "bad_request"},
		{"GET two offsets", "GET", "mal", "?offset=-1&offset=-1", nil, "", 400, "bad_request"},
		{"GET bad live", "GET", "mal", "?offset=-1&live=poll", nil, "", 400, "bad_request"},
		{"GET live without offset", "GET", "mal", "?live=long-poll", nil, "", 400, "bad_request"},
		{"GET a missing stream", "GET", "nope", "?offset=-1", nil, "", 404, "not_found"},
		{"DELETE a missing stream", "DELETE", "nope", "", nil, "", 404, "not_found"},
		{"PATCH", "PATCH", "mal", "", nil, "", 405, "method_not_allowed"},
		// Text that is not UTF-8 (issue 13): refused, nothing stored, whatever the stream.
		{"PUT JSON not UTF-8", "PUT", "new1", "", map[string]string{"Content-Type": "application/json"}, "\"\xff\xfe\"", 400, "invalid_utf8"},
		{"PUT text not UTF-8", "PUT", "new1", "", text, "caf\xe9", 400, "invalid_utf8"},
		{"POST JSON not UTF-8", "POST", "mal-json", "", map[string]string{"Content-Type": "application/json"}, "\"\xff\xfe\"", 400, "invalid_utf8"},
		{"POST JSON array with one not UTF-8", "POST", "mal-json", "", map[string]string{"Content-Type": "application/json"}, "[1,\"\xc3\"]", 400, "invalid_utf8"},
		{"POST text not UTF-8", "POST", "mal", "", text, "\xff", 400, "invalid_utf8"},
		{"POST text with an encoded surrogate", "POST", "mal", "", text, "\xed\xa0\x80", 400, "invalid_utf8"},
		{"POST producer id not UTF-8", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Producer-Id": "p\xff", "Producer-Epoch": "1", "Producer-Seq": "1"}, "x", 400, "invalid_utf8"},
		{"POST Stream-Seq not UTF-8", "POST", "mal", "", map[string]string{"Content-Type": "text/plain", "Stream-Seq": "\xfe"}, "x", 400, "invalid_utf8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tailOf(c.stream)
			st, h, body := gwtest.DSDo(t, c.method, base+c.stream+c.query, c.hdr, c.body)
			if st != c.want {
				t.Fatalf("%s %s%s: %d %s, want %d", c.method, c.stream, c.query, st, body, c.want)
			}
			var e httperr.Body
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != c.code || e.Error.Message == "" || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s%s: %d %s %q, want the error shape with code %s", c.method, c.stream, c.query, st, h.Get("Content-Type"), body, c.code)
			}
			if after := tailOf(c.stream); after != before {
				t.Fatalf("half-written: the tail went from %s to %s", before, after)
			}
		})
	}
	// The refused fork left no reference behind: the source deletes outright.
	if st, _, _ := gwtest.DSDo(t, http.MethodDelete, base+"mal", nil, ""); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d", st)
	}
	if st, _, _ := gwtest.DSDo(t, http.MethodHead, base+"mal", nil, ""); st != http.StatusNotFound {
		t.Fatalf("HEAD after DELETE: %d, want 404 (not soft-deleted)", st)
	}
}
