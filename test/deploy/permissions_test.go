package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/internal/metrics/metricstest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/sigv4"
	"github.com/nats-io/nkeys"
)

// The roles of deploy/nats/accounts.conf, by the variable naming each one's public key.
var roles = []string{"HOLDFAST_OBJECTS", "HOLDFAST_GATEWAY", "HOLDFAST_STATUS"}

// users are the users of accounts.conf, by the variable of their public key: the roles,
// and the system account's.
var users = append(append([]string{}, roles...), "NATS_SYS")

const permConfig = `
[durable_objects]
bindings = [
  { name = "COUNTER", class_name = "Counter" },
  { name = "rooms", class_name = "ChatRoom" },
  { name = "limiters", class_name = "RateLimiter" },
]

[[routes]]
pattern = "/counter/{name}"
object = "COUNTER"

[[routes]]
pattern = "/"
function = "chat"

[[routes]]
pattern = "/api/"
function = "chat"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[auth]
api_keys = ["deploy-test-key"]
trusted_proxy_header = "X-Forwarded-For"
s3 = [{ access_key = "deploy", secret_key = "deploy-secret-key" }]

[objects]
lease_ttl = "2s"
idle_timeout = "2s"
`

// TestLeastPermissions starts a 3-node JetStream cluster whose accounts and permissions are
// deploy/nats's own files (accounts.conf and permissions.conf, verbatim; only the users'
// public keys are this test's), with TLS on client connections and routes; runs an object
// host and a gateway as real processes logging in with the nkeys of their roles; and
// does what they do: Counter increments, durable streams over WebSocket and HTTP
// (appends, catch-up reads, long-polls, SSE), files over the file API and S3, chat rooms
// with their sockets and rate limiter, objects idling out and activating again, and
// holdfast status with the status role. Every part must work, and no server may log a
// permissions violation.
//
// With HOLDFAST_DEPLOY_DISCOVER=1 the roles may do anything and the servers trace every
// message: the test then prints, per connection, the subjects it published and subscribed
// to, which is how permissions.conf was written (and how to update it).
func TestLeastPermissions(t *testing.T) {
	skipShort(t)
	discover := os.Getenv("HOLDFAST_DEPLOY_DISCOVER") != ""
	dir := t.TempDir()
	ca, cert, key := certs(t, dir)
	seeds := writeNKeys(t, dir)
	copyFile(t, filepath.Join(repoRoot, "deploy", "nats", "accounts.conf"), filepath.Join(dir, "accounts.conf"))
	if discover {
		var all strings.Builder
		for _, r := range roles {
			fmt.Fprintf(&all, "%s: { publish: \">\", subscribe: \">\" }\n", r)
		}
		if err := os.WriteFile(filepath.Join(dir, "permissions.conf"), []byte(all.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		copyFile(t, filepath.Join(repoRoot, "deploy", "nats", "permissions.conf"), filepath.Join(dir, "permissions.conf"))
	}

	servers := startNATS(t, dir, 3, ca, cert, key, discover)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.url)
	}
	natsURLs := strings.Join(urls, ",")
	cfgPath := filepath.Join(dir, "holdfast.toml")
	if err := os.WriteFile(cfgPath, []byte(permConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	natsArgs := func(role string) []string {
		return []string{"--nats", natsURLs, "--nats-nkey", seeds[role], "--nats-tls-ca", ca, "--replicas", "3"}
	}
	host := start(t, "objects", holdfastBin, append([]string{"objects", "--config", cfgPath, "--host-id", "h1", "--log-level", "debug"}, natsArgs("HOLDFAST_OBJECTS")...)...)
	gwAddr, s3Addr, metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gw := start(t, "gateway", holdfastBin, append([]string{"gateway", "--config", cfgPath, "--listen", gwAddr, "--s3-listen", s3Addr,
		"--metrics-listen", metricsAddr, "--log-level", "debug"}, natsArgs("HOLDFAST_GATEWAY")...)...)
	base := "http://" + gwAddr
	c := &client{t: t, base: base, key: "deploy-test-key", metrics: "http://" + metricsAddr + "/metrics"}
	natstest.WaitFor(t, "the gateway's /healthz", 60*time.Second, func() bool {
		if host.exited() || gw.exited() {
			t.Fatalf("a holdfast process exited:\nobjects: %s\ngateway: %s", tail(host.stderr.String(), 3000), tail(gw.stderr.String(), 3000))
		}
		st, _ := c.do("GET", "/healthz", "", nil)
		return st == http.StatusOK
	})
	natstest.WaitFor(t, "the host to be ready", 60*time.Second, func() bool {
		return strings.Contains(host.stdout.String(), "holdfast objects host h1 ready")
	})

	t.Run("counters", func(t *testing.T) { c.t = t; counters(c) })
	t.Run("stream websocket", func(t *testing.T) { c.t = t; streamWebSocket(c) })
	t.Run("stream http", func(t *testing.T) { c.t = t; streamHTTP(c) })
	t.Run("files and s3", func(t *testing.T) { c.t = t; files(c, "http://"+s3Addr) })
	t.Run("chat sockets", func(t *testing.T) { c.t = t; chat(c) })
	t.Run("idle and back", func(t *testing.T) {
		c.t = t
		natstest.WaitFor(t, "the counter to idle out", 20*time.Second, func() bool {
			return !strings.Contains(status(t, natsURLs, seeds["HOLDFAST_STATUS"], ca, "objects", "--class", "Counter"), "apples")
		})
		counters(c)
	})
	t.Run("status", func(t *testing.T) {
		out := status(t, natsURLs, seeds["HOLDFAST_STATUS"], ca)
		if !strings.Contains(out, `"id": "h1"`) || !strings.Contains(out, `"gateways"`) {
			t.Fatalf("status:\n%s", out)
		}
	})
	// A graceful stop hands everything back: releases are writes too.
	gw.stop(t)
	host.stop(t)

	for _, s := range servers {
		for _, line := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "violation") {
				t.Errorf("%s: %s", s.name, line)
			}
		}
	}
	for _, p := range []*proc{host, gw} {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "permissions violation") || strings.Contains(line, "Authorization Violation") {
				t.Errorf("%s: %s", p.name, line)
			}
		}
	}
	if discover {
		report(t, servers)
	}
}

// writeNKeys makes an nkey pair for each of accounts.conf's users, writes their public keys
// as dir/nkeys.conf (what the operator writes from nkeys.conf.example) and their seeds as
// files, and returns the seed files by user.
func writeNKeys(t *testing.T, dir string) map[string]string {
	t.Helper()
	seeds := map[string]string{}
	var conf strings.Builder
	conf.WriteString("# Written by the test: each user's public key.\n")
	for _, u := range users {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seeds[u] = filepath.Join(dir, strings.ToLower(u)+".nk")
		if err := os.WriteFile(seeds[u], seed, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "%s_NKEY: %s\n", u, pub)
	}
	if err := os.WriteFile(filepath.Join(dir, "nkeys.conf"), []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return seeds
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// natsServer is one nats-server process of the test's cluster.
type natsServer struct {
	name, url string
	log       *logBuffer
}

// startNATS starts n nats-servers in one JetStream cluster on loopback, with TLS on client
// connections and (verified both ways) on routes, and the accounts of dir/accounts.conf.
func startNATS(t *testing.T, dir string, n int, ca, cert, key string, trace bool) []*natsServer {
	t.Helper()
	ports := make([]int, 2*n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	tlsBlock := fmt.Sprintf("{ cert_file: %q, key_file: %q, ca_file: %q, timeout: 5 }", cert, key, ca)
	routeTLS := fmt.Sprintf("{ cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 5 }", cert, key, ca)
	var out []*natsServer
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %s\nlisten: 127.0.0.1:%d\ntls: %s\n", name, ports[2*i], tlsBlock)
		fmt.Fprintf(&conf, "jetstream { store_dir: %q }\n", filepath.Join(dir, name))
		fmt.Fprintf(&conf, "cluster {\n  name: holdfast\n  listen: 127.0.0.1:%d\n  tls: %s\n  routes: [\n", ports[2*i+1], routeTLS)
		for j := range n {
			if j != i {
				fmt.Fprintf(&conf, "    nats-route://127.0.0.1:%d\n", ports[2*j+1])
			}
		}
		conf.WriteString("  ]\n}\n")
		if trace {
			conf.WriteString("trace: true\n")
		}
		conf.WriteString("include \"accounts.conf\"\n")
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		p := start(t, "nats-server "+name, natsServerBin, "-c", path)
		out = append(out, &natsServer{name: name, url: fmt.Sprintf("nats://127.0.0.1:%d", ports[2*i]), log: &p.stderr})
		if p.exited() {
			t.Fatalf("%s exited: %s", name, p.stderr.String())
		}
	}
	for _, s := range out {
		natstest.WaitFor(t, s.name+" to be ready", 30*time.Second, func() bool {
			return strings.Contains(s.log.String(), "Server is ready")
		})
	}
	return out
}

// status runs holdfast status with the status role's key and returns its JSON.
func status(t *testing.T, urls, seed, ca string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(holdfastBin, append(append([]string{"status"}, args...), "--json", "--nats", urls, "--nats-nkey", seed, "--nats-tls-ca", ca)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("holdfast status %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// client makes the gateway's requests with its API key.
type client struct {
	t       *testing.T
	base    string
	key     string
	metrics string // the gateway's --metrics-listen URL
}

func (c *client) do(method, path, body string, hdr http.Header) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *client) must(method, path, body string, hdr http.Header, want ...int) string {
	c.t.Helper()
	st, b := c.do(method, path, body, hdr)
	for _, w := range want {
		if st == w {
			return b
		}
	}
	c.t.Fatalf("%s %s: %d %s (want %v)", method, path, st, b, want)
	return ""
}

func (c *client) dial(path string, hdr http.Header) *websocket.Conn {
	c.t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Authorization", "Bearer "+c.key)
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.base, "http")+path, hdr)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		c.t.Fatalf("dial %s: %v (%d)", path, err, st)
	}
	c.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func readJSON(t *testing.T, conn *websocket.Conn) map[string]any {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

func counters(c *client) {
	for range 3 {
		c.must("POST", "/counter/apples", "", nil, http.StatusOK)
	}
	if b := c.must("GET", "/counter/apples", "", nil, http.StatusOK); !strings.Contains(b, `"value"`) {
		c.t.Fatalf("counter: %s", b)
	}
}

func streamWebSocket(c *client) {
	t := c.t
	sub := c.dial("/v1/stream/deploy/ws?client=reader-1", nil)
	pub := c.dial("/v1/stream/deploy/ws", nil)
	for i := 1; i <= 5; i++ {
		frame := fmt.Sprintf(`{"type":"publish","id":"%d","data":{"n":%d},"producerId":"deploy-producer","producerEpoch":0,"producerSeq":%d}`, i, i, i-1)
		if err := pub.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		for { // the publisher's connection is subscribed too: deliveries come between
			m := readJSON(t, pub)
			if m["type"] == "published" {
				break
			}
			if m["type"] != "message" {
				t.Fatalf("publish %d: %v", i, m)
			}
		}
	}
	for i := 1; i <= 5; i++ {
		m := readJSON(t, sub)
		if m["type"] != "message" || m["seq"] != float64(i) {
			t.Fatalf("delivery %d: %v", i, m)
		}
	}
	if err := sub.WriteMessage(websocket.TextMessage, []byte(`{"type":"ack","seq":5}`)); err != nil {
		t.Fatal(err)
	}
	cmd := `{"type":"command","id":"c1","command":"getStreamInfo","args":{}}`
	if err := pub.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	for {
		m := readJSON(t, pub)
		if m["type"] == "reply" {
			break
		}
		if m["type"] != "message" {
			t.Fatalf("getStreamInfo: %v", m)
		}
	}
	// A consumer group member and the durable-stream route.
	grp := c.dial("/v1/stream/deploy/ws?group=g1&client=m1", nil)
	if m := readJSON(t, grp); m["type"] != "message" {
		t.Fatalf("group delivery: %v", m)
	}
	compat := c.dial("/stream/deploy-compat?apiKey="+c.key, nil)
	if err := compat.WriteMessage(websocket.TextMessage, []byte(`{"data":{"x":1},"cMsgId":1,"clientId":7}`)); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, compat); m["sequence"] == nil {
		t.Fatalf("durable-stream publish: %v", m)
	}
}

func streamHTTP(c *client) {
	t := c.t
	js := http.Header{"Content-Type": {"application/json"}}
	c.must("PUT", "/v1/stream/deploy/http", "", js, http.StatusCreated, http.StatusOK)
	c.must("POST", "/v1/stream/deploy/http", `{"n":1}`, js, http.StatusOK, http.StatusNoContent)
	if b := c.must("GET", "/v1/stream/deploy/http?offset=-1", "", nil, http.StatusOK); !strings.Contains(b, `"n":1`) {
		t.Fatalf("read: %s", b)
	}
	// A long-poll woken by an append.
	req, _ := http.NewRequest("HEAD", c.base+"/v1/stream/deploy/http", nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tailOffset := resp.Header.Get("Stream-Next-Offset")
	done := make(chan string, 1)
	go func() {
		st, b := c.do("GET", "/v1/stream/deploy/http?live=long-poll&offset="+tailOffset, "", nil)
		done <- strconv.Itoa(st) + " " + b
	}()
	natstest.WaitFor(t, "the long-poll to wait", 10*time.Second, func() bool {
		s, err := metricstest.TryScrape(c.metrics, "")
		return err == nil && s.Get("holdfast_gateway_connections", "transport", "long_poll") == 1
	})
	c.must("POST", "/v1/stream/deploy/http", `{"n":2}`, js, http.StatusOK, http.StatusNoContent)
	select {
	case got := <-done:
		if !strings.Contains(got, `"n":2`) {
			t.Fatalf("long-poll: %s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long-poll was not woken")
	}
	// A pull-wake subscription: its engine follows the stream's appends and writes a wake.
	c.must("PUT", "/v1/stream/deploy/wakes", "", js, http.StatusCreated, http.StatusOK)
	c.must("PUT", "/v1/stream/__ds/subscriptions/deploy-sub",
		`{"type":"pull-wake","streams":["deploy/http"],"wake_stream":"deploy/wakes"}`, js, http.StatusCreated, http.StatusOK)
	c.must("POST", "/v1/stream/deploy/http", `{"n":3}`, js, http.StatusOK, http.StatusNoContent)
	natstest.WaitFor(t, "a wake to claim", 20*time.Second, func() bool {
		st, _ := c.do("POST", "/v1/stream/__ds/subscriptions/deploy-sub/claim", `{"worker":"w1"}`, js)
		return st == http.StatusOK
	})
	// sse-cluster's routes: a publish, and the status that asks every gateway.
	c.must("POST", "/channel/deploy", `{"data":"hi"}`, js, http.StatusOK, http.StatusNoContent, http.StatusAccepted)
	c.must("GET", "/status", "", nil, http.StatusOK)
	// An EventSource.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", c.base+"/v1/stream/deploy/http", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte(`"n":2`)) {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("event stream: %v after %q", err, got)
		}
	}
}

func files(c *client, s3 string) {
	t := c.t
	c.must("PUT", "/v1/files/files/deploy/a.txt", "hello files", nil, http.StatusOK, http.StatusCreated)
	if b := c.must("GET", "/v1/files/files/deploy/a.txt", "", nil, http.StatusOK); b != "hello files" {
		t.Fatalf("file: %q", b)
	}
	s3do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, s3+path, strings.NewReader(body))
		sigv4.Sign(req, "deploy", "deploy-secret-key", "us-east-1", time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := s3do("PUT", "/files/deploy/b.txt", "hello s3"); st != http.StatusOK {
		t.Fatalf("s3 put: %d %s", st, b)
	}
	if st, b := s3do("GET", "/files/deploy/b.txt", ""); st != http.StatusOK || b != "hello s3" {
		t.Fatalf("s3 get: %d %s", st, b)
	}
	if st, b := s3do("GET", "/files?list-type=2&prefix=deploy/", ""); st != http.StatusOK || !strings.Contains(b, "b.txt") {
		t.Fatalf("s3 list: %d %s", st, b)
	}
	if st, b := s3do("DELETE", "/files/deploy/b.txt", ""); st != http.StatusNoContent {
		t.Fatalf("s3 delete: %d %s", st, b)
	}
}

func chat(c *client) {
	t := c.t
	dial := func(ip string) *websocket.Conn {
		return c.dial("/api/room/deploy-room/websocket", http.Header{"X-Forwarded-For": {ip}})
	}
	alice, bob := dial("10.9.0.1"), dial("10.9.0.2")
	waitReady := func(conn *websocket.Conn) {
		for {
			if m := readJSON(t, conn); m["ready"] == true {
				return
			}
		}
	}
	_ = alice.WriteMessage(websocket.TextMessage, []byte(`{"name":"alice"}`))
	waitReady(alice)
	_ = bob.WriteMessage(websocket.TextMessage, []byte(`{"name":"bob"}`))
	waitReady(bob)
	_ = alice.WriteMessage(websocket.TextMessage, []byte(`{"message":"hello bob"}`))
	for {
		if m := readJSON(t, bob); m["message"] == "hello bob" {
			break
		}
	}
	// The gateway counted the sockets' messages both ways.
	m := metricstest.Scrape(t, c.metrics, "")
	if in, out := m.Get("holdfast_gateway_messages_in_total", "transport", "object_ws"), m.Get("holdfast_gateway_messages_out_total", "transport", "object_ws"); in < 3 || out < 4 {
		t.Errorf("object socket messages: in %v, out %v", in, out)
	}
	if n := m.Get("holdfast_gateway_connections", "transport", "object_ws"); n != 2 {
		t.Errorf("object sockets open: %v, want 2", n)
	}
}

// report prints, per client connection name, the subjects it published and subscribed to,
// read from the servers' traces, with inbox and id tokens folded.
func report(t *testing.T, servers []*natsServer) {
	// [TRC] 127.0.0.1:5555 - cid:7 - "v1.55.0:go:holdfast-gateway" - <<- [PUB subject reply 12]
	line := regexp.MustCompile(`"v[^:]+:go:([^"]+)" - (?:"[^"]*" - )?<<- \[(PUB|HPUB|SUB) ([^ \]]+)`)
	fold := []struct {
		re *regexp.Regexp
		to string
	}{
		{regexp.MustCompile(`^(_INBOX[A-Za-z_]*)\..*`), "$1.>"},
		{regexp.MustCompile(`^\$JS\.ACK\..*`), "$$JS.ACK.>"},
		{regexp.MustCompile(`^\$JS\.FC\..*`), "$$JS.FC.>"},
		{regexp.MustCompile(`^(\$JS\.API\.CONSUMER\.[A-Z]+\.[^.]+)\..*`), "$1.>"},
		{regexp.MustCompile(`^(\$JS\.API\.DIRECT\.GET\.[^.]+)\..*`), "$1.>"},
		{regexp.MustCompile(`^(\$KV\.[^.]+)\..*`), "$1.>"},
		{regexp.MustCompile(`^hf\.(host|gw)\..*`), "hf.$1.*"},
		{regexp.MustCompile(`^hf\.(obj|log)\..*`), "hf.$1.>"},
		{regexp.MustCompile(`^hf_blob\.c\..*`), "hf_blob.c.>"},
		{regexp.MustCompile(`^(\$JS\.API\.STREAM\.[A-Z.]+\.)HFL_[^.]+`), "${1}HFL_*"},
	}
	seen := map[string]map[string]bool{}
	for _, s := range servers {
		for _, m := range line.FindAllStringSubmatch(s.log.String(), -1) {
			subj := m[3]
			for _, f := range fold {
				subj = f.re.ReplaceAllString(subj, f.to)
			}
			k := m[1]
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			op := "pub"
			if m[2] == "SUB" {
				op = "sub"
			}
			seen[k][op+" "+subj] = true
		}
	}
	var names []string
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var ss []string
		for s := range seen[k] {
			ss = append(ss, s)
		}
		sort.Strings(ss)
		t.Logf("%s:\n  %s", k, strings.Join(ss, "\n  "))
	}
}
