package gwtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/streams"
)

// DSDo sends one request and returns the status, headers and body.
func DSDo(t *testing.T, method, url string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// Bearer is the headers of a JSON request with API key tok.
func Bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
}

// Offset is the Durable Streams offset of seq: zero-padded to 16 digits, so that offsets
// sort as strings.
func Offset(seq uint64) string { return fmt.Sprintf("%016d", seq) }

// AcceptEvents are the headers of a browser EventSource's request.
var AcceptEvents = map[string]string{"Accept": "text/event-stream"}

// SSELines reads an event stream's lines until the response ends.
func SSELines(t *testing.T, url string, hdr map[string]string) (<-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	ch := make(chan string, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	stop := func() { cancel(); res.Body.Close() }
	t.Cleanup(stop)
	return ch, stop
}

// AwaitLine reads lines until one satisfies ok, within 10 s; it returns the lines read.
func AwaitLine(t *testing.T, ch <-chan string, ok func(string) bool) []string {
	t.Helper()
	var seen []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, open := <-ch:
			if !open {
				t.Fatalf("the event stream ended; read %q", seen)
			}
			seen = append(seen, l)
			if ok(l) {
				return seen
			}
		case <-deadline:
			t.Fatalf("timed out; read %q", seen)
		}
	}
}

// HookLog records what the authorization hooks of AuthHooks were asked.
type HookLog struct {
	sync.Mutex                   // held while reading Keys and Subs
	Keys       map[string]bool   // keys seen
	Subs       map[string]string // stream -> key of the last subscribe asked
}

// NewHookLog is an empty HookLog.
func NewHookLog() *HookLog { return &HookLog{Keys: map[string]bool{}, Subs: map[string]string{}} }

func (l *HookLog) saw(c streams.Conn, stream string) {
	l.Lock()
	defer l.Unlock()
	l.Keys[c.Key] = true
	l.Subs[stream] = c.Key
}

// SubKey is the key of the last subscribe to stream the hooks were asked.
func (l *HookLog) SubKey(stream string) string {
	l.Lock()
	defer l.Unlock()
	return l.Subs[stream]
}

// AuthHooks: streams under secret/ are for key k2 only; a publish whose data holds
// "forbidden", and any publish to ro/..., is refused.
func AuthHooks(l *HookLog) streams.Hooks {
	return streams.Hooks{
		AuthorizeSubscribe: func(_ context.Context, c streams.Conn, stream string) error {
			l.saw(c, stream)
			if strings.HasPrefix(stream, "secret/") && c.Key != "k2" {
				return fmt.Errorf("%w: %s needs k2", streams.ErrForbidden, stream)
			}
			return nil
		},
		AuthorizePublish: func(_ context.Context, c streams.Conn, stream string, data json.RawMessage) error {
			l.saw(c, "pub:"+stream)
			if strings.HasPrefix(stream, "ro/") || strings.Contains(string(data), "forbidden") {
				return fmt.Errorf("%w: no publishing that to %s", streams.ErrForbidden, stream)
			}
			return nil
		},
	}
}
