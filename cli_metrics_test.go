package holdfast

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/internal/metrics/metricstest"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/holdfast/holdfast/internal/natstest"
)

// lockedBuffer collects the log lines of commands running at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const metricsTestConfig = `
[durable_objects]
bindings = [{ name = "COUNTER", class_name = "Counter" }]

[[routes]]
pattern = "/counter/{name}"
object = "COUNTER"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[auth]
api_keys = ["test-key"]
s3 = [{ access_key = "ak", secret_key = "sk-sk-sk-sk" }]
`

// TestProductionMetricsAndLogs runs `holdfast objects` and `holdfast gateway` as in
// production against a NATS server, sends real requests, and scrapes both: the
// gateway's /metrics needs the API key on its public listener and none on
// --metrics-listen, the host's is on its own --metrics-listen, and the counters moved by
// what was sent. Both log JSON, one object per line, by default.
func TestProductionMetricsAndLogs(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	natsURL := "nats://" + ns.Addr().String()
	config := filepath.Join(t.TempDir(), "holdfast.toml")
	if err := os.WriteFile(config, []byte(metricsTestConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logOutput = logs
	defer func() { logOutput = os.Stderr }()

	hostMetrics, gwAddr, gwMetrics, s3Addr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Run(ctx, args, WithClasses(counter.Class), WithReady(io.Discard)); err != nil {
				t.Errorf("holdfast %s: %v", args[0], err)
			}
		}()
	}
	run("objects", "--nats", natsURL, "--insecure", "--config", config, "--host-id", "h1", "--metrics-listen", hostMetrics)
	run("gateway", "--nats", natsURL, "--config", config, "--listen", gwAddr, "--s3-listen", s3Addr, "--metrics-listen", gwMetrics)
	defer func() { cancel(); wg.Wait() }()

	base, key := "http://"+gwAddr, "Bearer test-key"
	do := func(method, url, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	natstest.WaitFor(t, "the gateway to be healthy", 20*time.Second, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	natstest.WaitFor(t, "the host to be healthy on its metrics listener", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + hostMetrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for range 3 {
		if st := do("POST", base+"/counter/apples", ""); st != http.StatusOK {
			t.Fatalf("POST /counter/apples: %d", st)
		}
	}
	if st := do("PUT", base+"/v1/files/files/a.txt", "twelve bytes"); st != http.StatusOK && st != http.StatusCreated {
		t.Fatalf("PUT a file: %d", st)
	}
	if st := do("GET", base+"/v1/files/files/a.txt", ""); st != http.StatusOK {
		t.Fatalf("GET a file: %d", st)
	}
	// Unsigned, so refused: counted all the same.
	if resp, err := http.Get("http://" + s3Addr + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	// A stream: one subscriber, one publisher, 3 publishes over WebSocket.
	wsURL := "ws://" + gwAddr + "/v1/stream/metrics/demo"
	hdr := http.Header{"Authorization": {key}}
	sub, _, err := websocket.DefaultDialer.Dial(wsURL, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, _, err := websocket.DefaultDialer.Dial(wsURL+"?from=latest", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range 3 {
		if err := pub.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"publish","id":"%d","data":%d}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 3; {
		_ = sub.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := sub.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"type":"message"`)) {
			got++
		}
	}
	for acked := 0; acked < 3; {
		_ = pub.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := pub.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"type":"published"`)) {
			acked++
		}
	}

	// The public listener wants the API key for /metrics.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without the API key: %d, want 401", resp.StatusCode)
	}
	public := metricstest.Scrape(t, base+"/metrics", key)
	gw := metricstest.Scrape(t, "http://"+gwMetrics+"/metrics", "")
	for _, s := range []metricstest.Samples{public, gw} {
		expect(t, s, "holdfast_gateway_http_requests_total", 3, "route", "object", "code", "200")
		expect(t, s, "holdfast_gateway_object_requests_total", 3, "class", "Counter", "result", "ok")
		expect(t, s, "holdfast_gateway_object_request_duration_seconds", 3, "class", "Counter")
	}
	expect(t, gw, "holdfast_gateway_http_requests_total", 1, "route", "metrics", "code", "401")
	atLeast(t, gw, "holdfast_gateway_http_requests_total", 2, "route", "files")
	atLeast(t, gw, "holdfast_gateway_http_requests_total", 1, "route", "health", "code", "200")
	expect(t, gw, "holdfast_gateway_http_request_duration_seconds", 3, "route", "object")
	expect(t, gw, "holdfast_s3_requests_total", 1, "operation", "ListBuckets", "code", "403")
	expect(t, gw, "holdfast_files_written_bytes_total", 12)
	expect(t, gw, "holdfast_files_read_bytes_total", 12)
	expect(t, gw, "holdfast_nats_connected", 1, "conn", "gateway")
	expect(t, gw, "holdfast_nats_connected", 1, "conn", "gateway_control")
	expect(t, gw, "holdfast_gateway_connections", 0, "transport", "http") // requests count while they are served; none is now
	expect(t, gw, "holdfast_gateway_connections", 2, "transport", "stream_ws")
	expect(t, gw, "holdfast_gateway_messages_in_total", 3, "transport", "stream_ws")
	atLeast(t, gw, "holdfast_gateway_messages_out_total", 6, "transport", "stream_ws") // the subscriber's 3 and the publisher's own
	expect(t, gw, "holdfast_stream_publish_ack_seconds", 3)
	expect(t, gw, "holdfast_stream_publish_deliver_seconds", 6) // each live delivery: the subscriber's 3 and the publisher's own
	atLeast(t, gw, "holdfast_gateway_object_requests_total", 1, "class", "Stream", "result", "ok")
	atLeast(t, gw, "holdfast_build_info", 1)
	atLeast(t, gw, "go_goroutines", 1)
	atLeast(t, gw, "process_resident_memory_bytes", 1)

	natstest.WaitFor(t, "host lease renewals to show", 10*time.Second, func() bool {
		s, err := metricstest.TryScrape("http://"+hostMetrics+"/metrics", "")
		return err == nil && s.Get("holdfast_host_lease_renewals_total", "result", "ok") > 0 &&
			s.Get("holdfast_host_lease_renewal_duration_seconds") > 0
	})
	host := metricstest.Scrape(t, "http://"+hostMetrics+"/metrics", "")
	expect(t, host, "holdfast_object_activations_total", 1, "class", "Counter", "result", "ok")
	expect(t, host, "holdfast_object_activation_duration_seconds", 1, "class", "Counter")
	expect(t, host, "holdfast_objects_active", 1, "class", "Counter")
	expect(t, host, "holdfast_object_events_total", 3, "class", "Counter", "op", "fetch")
	expect(t, host, "holdfast_object_commits_total", 3, "class", "Counter", "result", "ok")
	atLeast(t, host, "holdfast_object_commit_duration_seconds", 3)
	expect(t, host, "holdfast_host_leases_lost_total", 0)
	expect(t, host, "holdfast_nats_connected", 1, "conn", "objects_control")
	if _, ok := host.Value("holdfast_gateway_http_requests_total"); ok {
		t.Error("the host exports gateway metrics")
	}

	// Production logs: every line one JSON object with time, level and msg; the host's
	// lines name the host.
	cancel()
	wg.Wait()
	out := logs.String()
	sc := bufio.NewScanner(strings.NewReader(out))
	lines, hostLines := 0, 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q (%v)", sc.Text(), err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("log line without %q: %s", k, sc.Text())
			}
		}
		if rec["msg"] == "object host ready" {
			hostLines++
			if rec["host"] != "h1" {
				t.Errorf("host line without host=h1: %s", sc.Text())
			}
		}
		lines++
	}
	if lines == 0 || hostLines != 1 {
		t.Fatalf("%d log lines, %d host ready lines:\n%s", lines, hostLines, out)
	}
}

func expect(t *testing.T, s metricstest.Samples, name string, want float64, labels ...string) {
	t.Helper()
	if got, ok := s.Value(name, labels...); !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v\n%s", name, labels, got, ok, want, s.String(name))
	}
}

func atLeast(t *testing.T, s metricstest.Samples, name string, want float64, labels ...string) {
	t.Helper()
	if got := s.Get(name, labels...); got < want {
		t.Errorf("%s%v = %v, want at least %v\n%s", name, labels, got, want, s.String(name))
	}
}
