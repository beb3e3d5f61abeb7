package dshttp_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
)

// TestDSConcurrentAppends: appends racing to one stream (so the gateway batches them)
// each keep their own checks and answer: every 2xx is stored once with its own offset,
// refusals store nothing, duplicates of an idempotent producer store one record, and
// nothing is stored after the close that one of them carried.
func TestDSConcurrentAppends(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{LongPollTimeout: 200 * time.Millisecond})
	u := f.URL + "/v1/stream/batched"
	text := map[string]string{"Content-Type": "text/plain"}
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, u, text, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	type answer struct {
		st   int
		next string
	}
	const n = 60
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hdr := map[string]string{"Content-Type": "text/plain"}
			body := fmt.Sprintf("a%d;", i)
			switch {
			case i%10 == 3: // a content type the stream does not have
				hdr["Content-Type"] = "application/json"
				body = `"x"`
			case i%10 == 7: // the same producer write, five times
				hdr["Producer-Id"], hdr["Producer-Epoch"], hdr["Producer-Seq"] = "p", "0", "0"
				body = "p0;"
			}
			st, h, _ := gwtest.DSDo(t, http.MethodPost, u, hdr, body)
			answers[i] = answer{st, h.Get("Stream-Next-Offset")}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	producerNew := 0
	for i, a := range answers {
		switch i % 10 {
		case 3:
			if a.st != http.StatusConflict {
				t.Errorf("append %d with the wrong content type: %d", i, a.st)
			}
		case 7:
			if a.st == http.StatusOK {
				producerNew++
			} else if a.st != http.StatusNoContent {
				t.Errorf("producer duplicate %d: %d", i, a.st)
			}
		default:
			if a.st != http.StatusNoContent {
				t.Errorf("append %d: %d", i, a.st)
			}
			if seen[a.next] {
				t.Errorf("append %d: offset %s answered twice", i, a.next)
			}
			seen[a.next] = true
		}
	}
	if producerNew != 1 {
		t.Errorf("%d producer appends were new, want 1", producerNew)
	}
	st, _, body := gwtest.DSDo(t, http.MethodGet, u+"?offset=-1", nil, "")
	if st != http.StatusOK {
		t.Fatalf("GET: %d", st)
	}
	for i := range n {
		want := 1
		switch i % 10 {
		case 3:
			want = 0
		case 7:
			continue
		}
		if c := strings.Count(body, fmt.Sprintf("a%d;", i)); c != want {
			t.Errorf("a%d stored %d times, want %d", i, c, want)
		}
	}
	if c := strings.Count(body, "p0;"); c != 1 {
		t.Errorf("the producer's write stored %d times", c)
	}
}

// TestDSConcurrentClose: a close racing with appends: the appends answered 2xx are stored,
// the ones refused as closed are not, and nothing follows the close.
func TestDSConcurrentClose(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{LongPollTimeout: 200 * time.Millisecond})
	u := f.URL + "/v1/stream/batched-close"
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, u, map[string]string{"Content-Type": "text/plain"}, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	const n, closer = 40, 20
	sts := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hdr := map[string]string{"Content-Type": "text/plain"}
			if i == closer {
				hdr["Stream-Closed"] = "true"
			}
			sts[i], _, _ = gwtest.DSDo(t, http.MethodPost, u, hdr, "c"+strconv.Itoa(i)+";")
		}()
	}
	wg.Wait()
	if sts[closer] != http.StatusNoContent {
		t.Fatalf("the closing append: %d", sts[closer])
	}
	st, h, body := gwtest.DSDo(t, http.MethodGet, u+"?offset=-1", nil, "")
	if st != http.StatusOK || h.Get("Stream-Closed") != "true" {
		t.Fatalf("GET: %d, Stream-Closed %q", st, h.Get("Stream-Closed"))
	}
	if !strings.HasSuffix(body, "c"+strconv.Itoa(closer)+";") {
		t.Errorf("the stream does not end with the closing append: %q", body)
	}
	for i, st := range sts {
		stored := strings.Contains(body, "c"+strconv.Itoa(i)+";")
		switch st {
		case http.StatusNoContent:
			if !stored {
				t.Errorf("append %d answered 204 but is not stored", i)
			}
		case http.StatusConflict:
			if stored {
				t.Errorf("append %d refused as closed but stored", i)
			}
		default:
			t.Errorf("append %d: %d", i, st)
		}
	}
}

// TestDSConcurrentLargeAppends: racing appends that together exceed what one object event
// may write are split over several batches, and each succeeds as it would alone.
func TestDSConcurrentLargeAppends(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{LongPollTimeout: 200 * time.Millisecond})
	u := f.URL + "/v1/stream/batched-large"
	bin := map[string]string{"Content-Type": "application/octet-stream"}
	st, h, _ := gwtest.DSDo(t, http.MethodPut, u, bin, "")
	if st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	start, _ := strconv.ParseUint(h.Get("Stream-Next-Offset"), 10, 64)
	const n = 16
	body := strings.Repeat("z", 200<<10)
	sts := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[i], _, _ = gwtest.DSDo(t, http.MethodPost, u, bin, body)
		}()
	}
	wg.Wait()
	for i, st := range sts {
		if st != http.StatusNoContent {
			t.Errorf("append %d: %d", i, st)
		}
	}
	_, h, _ = gwtest.DSDo(t, http.MethodHead, u, nil, "")
	if end, _ := strconv.ParseUint(h.Get("Stream-Next-Offset"), 10, 64); end != start+n {
		t.Errorf("the tail moved from %d to %d, want %d appends", start, end, n)
	}
}
