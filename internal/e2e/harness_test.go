package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/objlog"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Paths of the binaries TestMain builds.
var holdfastBin, natsServerBin string

// Settings every test's processes share. The lease is short so failover is quick; the
// request timeout is longer than any failover, so a request that was not lost with its
// host is answered rather than timed out.
const (
	leaseTTL       = 2 * time.Second
	requestTimeout = 15 * time.Second
	clientTimeout  = 20 * time.Second // above requestTimeout: the gateway always answers first
	counterClass   = "Counter"
)

const configTOML = `
[durable_objects]
bindings = [{ name = "COUNTER", class_name = "Counter" }]

[[routes]]
pattern = "/counter/{name}"
object = "COUNTER"

[objects]
lease_ttl = "2s"
request_timeout = "15s"
`

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself; nothing to build
	}
	dir, err := os.MkdirTemp("", "holdfast-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds holdfast and the pinned nats-server into dir, concurrently.
func buildBinaries(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside a Go module")
	}
	root := filepath.Dir(gomod)
	holdfastBin = filepath.Join(dir, "holdfast")
	natsServerBin = filepath.Join(dir, "nats-server")
	builds := [][]string{
		{"build", "-o", holdfastBin, "./cmd/holdfast"},
		// The module's own dependency, so the server is the version go.mod pins.
		{"build", "-o", natsServerBin, "github.com/nats-io/nats-server/v2"},
	}
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, args := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
}

// waitFor polls cond until it holds, failing the test after d.

// logBuffer collects a process's output; it is safe to read while the process writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hasLine reports whether some complete line satisfies match.
func (l *logBuffer) hasLine(match func(string) bool) bool {
	s := l.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return false
	}
	for line := range strings.SplitSeq(s, "\n") {
		if match(line) {
			return true
		}
	}
	return false
}

// proc is one child process, in its own process group.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr logBuffer
	done           chan struct{} // closed once it exited
	err            error         // its exit status, set before done closes
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to p. For SIGSTOP it returns once the process is stopped: the signal
// is delivered asynchronously, and a process still running for a moment could take (and
// even commit) a request the test sends right after, which it believes cannot run.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
	if sig == syscall.SIGSTOP {
		natstest.WaitFor(t, p.name+" to stop", 5*time.Second, p.stopped)
	}
}

// stopped reports whether every thread of p is stopped ('T' in /proc/<pid>/task/*/stat).
func (p *proc) stopped() bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// "tid (comm) S ...": the state follows the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// cluster is one test's set of processes: a nats-server, object hosts and a gateway.
type cluster struct {
	t       *testing.T
	dir     string
	config  string
	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	hosts   map[string]*proc // by host id
	gateway *proc
	gwURL   string
	http    *http.Client
}

// startCluster starts a nats-server, one object host per id and one gateway on the
// counter config, and returns once all of them are ready. Everything is killed when the
// test ends.
func startCluster(t *testing.T, hostIDs ...string) *cluster {
	t.Helper()
	return startClusterWith(t, configTOML, hostIDs...)
}

// startClusterWith is startCluster with holdfast.toml holding toml.
func startClusterWith(t *testing.T, toml string, hostIDs ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), hosts: map[string]*proc{}}
	c.config = filepath.Join(c.dir, "holdfast.toml")
	if err := os.WriteFile(c.config, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	c.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := c.start("nats-server", natsServerBin, "-js", "-sd", filepath.Join(c.dir, "jetstream"),
		"-a", "127.0.0.1", "-p", strconv.Itoa(port))
	natstest.WaitFor(t, "nats-server to accept clients", 15*time.Second, func() bool {
		c.mustRun(ns)
		nc, err := nats.Connect(c.natsURL, nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		c.nc = nc
		return true
	})
	t.Cleanup(c.nc.Close)
	var err error
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}

	for _, id := range hostIDs {
		c.hosts[id] = c.start("objects "+id, holdfastBin, "objects", "--nats", c.natsURL,
			"--insecure", "--config", c.config, "--host-id", id)
	}
	gwAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.gwURL = "http://" + gwAddr
	c.gateway = c.start("gateway", holdfastBin, "gateway", "--nats", c.natsURL,
		"--insecure", "--config", c.config, "--listen", gwAddr)
	c.http = &http.Client{
		Timeout:   clientTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128},
	}
	t.Cleanup(c.http.CloseIdleConnections)

	for id, p := range c.hosts {
		ready := "holdfast objects host " + id + " ready"
		natstest.WaitFor(t, p.name+" to be ready", 20*time.Second, func() bool {
			c.mustRun(p)
			return p.stdout.hasLine(func(l string) bool { return strings.HasPrefix(l, ready) })
		})
	}
	natstest.WaitFor(t, "the gateway's /healthz", 20*time.Second, func() bool {
		c.mustRun(c.gateway)
		resp, err := c.http.Get(c.gwURL + "/healthz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// start runs bin in its own process group, in the test's directory, with an environment
// free of HOLDFAST_* variables (they would override flags we do not pass).
func (c *cluster) start(name, bin string, args ...string) *proc {
	t := c.t
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = c.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOLDFAST_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		// SIGKILL reaches stopped processes too; the group takes any children along.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("--- %s stdout ---\n%s--- %s stderr ---\n%s", name, p.stdout.String(), name, p.stderr.String())
		}
	})
	return p
}

// mustRun fails the test, with the process's output, if p has exited.
func (c *cluster) mustRun(p *proc) {
	c.t.Helper()
	if p.exited() {
		c.t.Fatalf("%s exited early (%v):\n%s%s", p.name, p.err, p.stdout.String(), p.stderr.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// owner returns the host id holding counter name's lease, or "" when nobody does.
func (c *cluster) owner(name string) string { return c.ownerOf(counterClass, name) }

// result is one HTTP request to a counter through the gateway.
type result struct {
	name       string
	status     int
	value      int64  // for a 200
	code       string // the JSON error code otherwise
	err        error  // a transport error, or a body of the wrong shape
	start, end time.Time
}

// do sends method to /counter/name and decodes whichever of the two bodies comes back.
func (c *cluster) do(method, name string) (r result) {
	r = result{name: name, start: time.Now()}
	defer func() { r.end = time.Now() }()
	req, err := http.NewRequest(method, c.gwURL+"/counter/"+name, nil)
	if err != nil {
		r.err = err
		return r
	}
	resp, err := c.http.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r.status = resp.StatusCode
	switch {
	case err != nil:
		r.err = err
	case resp.StatusCode == http.StatusOK:
		var v struct {
			Name  string `json:"name"`
			Value *int64 `json:"value"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Name != name || v.Value == nil {
			r.err = fmt.Errorf("200 with body %q", body)
		} else {
			r.value = *v.Value
		}
	default:
		var e httperr.Body
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			r.err = fmt.Errorf("%d with body %q, not the JSON error shape", resp.StatusCode, body)
		} else {
			r.code = e.Error.Code
		}
	}
	return r
}

// get reads name's value, which must answer 200.
func (c *cluster) get(name string) int64 {
	c.t.Helper()
	r := c.do(http.MethodGet, name)
	if r.err != nil || r.status != http.StatusOK {
		c.t.Fatalf("GET %s: status %d code %q err %v", name, r.status, r.code, r.err)
	}
	return r.value
}

// tally records results from many goroutines.
type tally struct {
	mu      sync.Mutex
	results []result
}

func (ta *tally) add(r result) {
	ta.mu.Lock()
	ta.results = append(ta.results, r)
	ta.mu.Unlock()
}

// ok counts name's 200s that started after since.
func (ta *tally) ok(name string, since time.Time) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	n := 0
	for _, r := range ta.results {
		if r.name == name && r.status == http.StatusOK && r.start.After(since) {
			n++
		}
	}
	return n
}

func (ta *tally) of(name string) []result {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var rs []result
	for _, r := range ta.results {
		if r.name == name {
			rs = append(rs, r)
		}
	}
	return rs
}

// summary checks name's results against its final value: every 200 carries a distinct
// value no greater than final, and every failure is a 503 "unavailable" or a 504 "timeout"
// in the JSON error shape. It returns the counts of 200s, 503s and 504s.
func summary(t *testing.T, rs []result, final int64) (ok, unavailable, timeouts int) {
	t.Helper()
	seen := map[int64]bool{}
	for _, r := range rs {
		switch {
		case r.err != nil:
			t.Errorf("POST %s: %v", r.name, r.err)
		case r.status == http.StatusOK:
			ok++
			if seen[r.value] {
				t.Errorf("%s: value %d answered twice", r.name, r.value)
			}
			seen[r.value] = true
			if r.value < 1 || r.value > final {
				t.Errorf("%s: answered value %d, final value %d", r.name, r.value, final)
			}
		case r.status == http.StatusServiceUnavailable && r.code == httperr.CodeUnavailable:
			unavailable++
		case r.status == http.StatusGatewayTimeout && r.code == httperr.CodeTimeout:
			timeouts++
		default:
			t.Errorf("POST %s: status %d code %q: only 200, 503 and 504 are allowed", r.name, r.status, r.code)
		}
	}
	return ok, unavailable, timeouts
}

// probe sends a POST to name every 100ms, each in its own goroutine so that one stuck on
// a dead or paused host does not hold up the next, until one answers 200. It returns how
// long after since that first 200 came. Probes still in flight are tracked by wg.
func (c *cluster) probe(name string, since time.Time, limit time.Duration, ta *tally, wg *sync.WaitGroup) time.Duration {
	c.t.Helper()
	first := make(chan time.Time, 1)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Until(since.Add(limit)))
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.do(http.MethodPost, name)
			ta.add(r)
			if r.status == http.StatusOK {
				select {
				case first <- r.end:
				default:
				}
			}
		}()
		select {
		case at := <-first:
			return at.Sub(since)
		case <-deadline:
			c.t.Fatalf("%s did not answer 200 within %v", name, limit)
		case <-tick.C:
		}
	}
}

// logRecords reads the object's log and checks that its writes form one unbroken run:
// each put of "value" is the previous value plus one (a snapshot may stand in for a run
// of them), so no write was lost, repeated or written by a fenced-out owner. It returns
// the host ids of the epoch records in log order and the value the log ends with.
func (c *cluster) logRecords(name string) (epochs []string, value int64) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, wire.ObjectStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := wire.ObjectSubjectPrefix + counterClass + "." + names.Subject(name)
	last, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("last record of %s: %v", name, err)
	}
	for seq := uint64(1); seq <= last.Sequence; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			t.Fatalf("record of %s at or after %d: %v", name, seq, err)
		}
		seq = m.Sequence + 1
		var vals []int64
		kind, err := objlog.Decode(m.Data, func(op objlog.Op) error {
			switch {
			case m.Data[0] == objlog.KindEpoch:
				epochs = append(epochs, op.Key)
			case op.Type == objlog.OpPut && op.Key == "value":
				v, err := strconv.ParseInt(string(op.Value), 10, 64)
				if err != nil {
					return err
				}
				vals = append(vals, v)
			default:
				return fmt.Errorf("unexpected op %d on key %q", op.Type, op.Key)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("record %d of %s: %v", m.Sequence, name, err)
		}
		for _, v := range vals {
			switch {
			case kind == objlog.KindSnapshot && v >= value:
				value = v
			case kind == objlog.KindDelta && v == value+1:
				value = v
			default:
				t.Fatalf("record %d of %s (kind %d) writes value %d after %d", m.Sequence, name, kind, v, value)
			}
		}
	}
	return epochs, value
}
