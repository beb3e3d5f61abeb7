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
	"github.com/holdfast/holdfast/internal/natscluster"
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
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	holdfastBin = filepath.Join(dir, "holdfast")
	var natsErr error
	done := make(chan struct{})
	go func() { defer close(done); natsServerBin, natsErr = natscluster.Build(dir) }()
	cmd := exec.Command("go", "build", "-o", holdfastBin, "./cmd/holdfast")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("go build ./cmd/holdfast: %w\n%s", err, out)
	}
	<-done
	return errors.Join(err, natsErr)
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
}

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

// logRecord is one line of a production process's JSON log (log/slog), the fields the
// tests look at.
type logRecord struct {
	Msg    string `json:"msg"`
	Object string `json:"object"`
}

// hasRecord reports whether some complete line is a JSON log record that satisfies match.
func (l *logBuffer) hasRecord(match func(logRecord) bool) bool {
	return l.hasLine(func(line string) bool {
		var r logRecord
		return json.Unmarshal([]byte(line), &r) == nil && match(r)
	})
}

// lostObject matches the record of a host that found out it no longer owns the object
// key (class.name): its host lease was refused, the lease watch showed the object taken
// over, or a commit was refused.
func lostObject(key string) func(logRecord) bool {
	return func(r logRecord) bool {
		return r.Msg == "host lease lost; its objects stop and move" ||
			r.Object == key && (r.Msg == "object taken over by another host; it stops here" || r.Msg == "commit failed; object stops")
	}
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
	args           []string // bin and its arguments, to start it again
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

// cluster is one test's set of processes: nats-servers, object hosts and gateways.
type cluster struct {
	t        *testing.T // where helpers report; a subtest may set its own (with)
	root     *testing.T // the test that owns the processes
	dir      string
	config   string
	nats     *natscluster.Cluster
	natsURL  string // every server's URL, comma-separated
	nc       *nats.Conn
	js       jetstream.JetStream
	hosts    map[string]*proc // by host id
	gateways []*proc
	gwURLs   []string // http://addr of each gateway, the same across its restarts
	gateway  *proc    // gateways[0]
	gwURL    string   // gwURLs[0]
	http     *http.Client
}

// spec is what a test's cluster is made of.
type spec struct {
	toml     string   // holdfast.toml; default configTOML
	servers  int      // nats-servers: 1 (default) is a single server, 3 a JetStream cluster
	hosts    []string // object host ids
	gateways int      // default 1
}

// with makes helpers report to t (a subtest) until the returned function restores them.
func (c *cluster) with(t *testing.T) (restore func()) {
	old := c.t
	c.t = t
	return func() { c.t = old }
}

// startCluster starts a nats-server, one object host per id and one gateway on the
// counter config, and returns once all of them are ready. Everything is killed when the
// test ends.
func startCluster(t *testing.T, hostIDs ...string) *cluster {
	t.Helper()
	return startSpec(t, spec{hosts: hostIDs})
}

// startClusterWith is startCluster with holdfast.toml holding toml.
func startClusterWith(t *testing.T, toml string, hostIDs ...string) *cluster {
	t.Helper()
	return startSpec(t, spec{toml: toml, hosts: hostIDs})
}

// startSpec starts the nats-servers, hosts and gateways of sp and returns once all of
// them are ready. Every holdfast process gets every server's URL and no --replicas: on a
// cluster of three its streams are R3 by default.
func startSpec(t *testing.T, sp spec) *cluster {
	t.Helper()
	if sp.toml == "" {
		sp.toml = configTOML
	}
	sp.servers, sp.gateways = max(sp.servers, 1), max(sp.gateways, 1)
	c := &cluster{t: t, root: t, dir: t.TempDir(), hosts: map[string]*proc{}}
	c.config = filepath.Join(c.dir, "holdfast.toml")
	if err := os.WriteFile(c.config, []byte(sp.toml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	c.nats, err = natscluster.Start(ctx, natscluster.Options{Bin: natsServerBin, Dir: filepath.Join(c.dir, "nats"), Servers: sp.servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.nats.Close()
		if t.Failed() {
			for _, s := range c.nats.Servers {
				t.Logf("--- nats-server %s ---\n%s", s.Name, s.Log())
			}
		}
	})
	c.natsURL = c.nats.URLs()
	if c.nc, err = c.nats.Connect("e2e"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}

	for _, id := range sp.hosts {
		c.hosts[id] = c.start("objects "+id, holdfastBin, "objects", "--nats", c.natsURL,
			"--insecure", "--config", c.config, "--host-id", id)
	}
	for i := range sp.gateways {
		gwAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		c.gwURLs = append(c.gwURLs, "http://"+gwAddr)
		c.gateways = append(c.gateways, c.start(fmt.Sprintf("gateway %d", i+1), holdfastBin, "gateway", "--nats", c.natsURL,
			"--insecure", "--config", c.config, "--listen", gwAddr))
	}
	c.gateway, c.gwURL = c.gateways[0], c.gwURLs[0]
	c.http = &http.Client{
		Timeout:   clientTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128},
	}
	t.Cleanup(c.http.CloseIdleConnections)

	for id, p := range c.hosts {
		c.waitHost(id, p)
	}
	for i := range c.gateways {
		c.waitGateway(i)
	}
	return c
}

// waitHost waits for host id's ready line.
func (c *cluster) waitHost(id string, p *proc) {
	c.t.Helper()
	ready := "holdfast objects host " + id + " ready"
	natstest.WaitFor(c.t, p.name+" to be ready", 30*time.Second, func() bool {
		c.mustRun(p)
		return p.stdout.hasLine(func(l string) bool { return strings.HasPrefix(l, ready) })
	})
}

// waitGateway waits for gateway i's /healthz to answer 200.
func (c *cluster) waitGateway(i int) {
	c.t.Helper()
	natstest.WaitFor(c.t, c.gateways[i].name+"'s /healthz", 30*time.Second, func() bool {
		c.mustRun(c.gateways[i])
		resp, err := c.http.Get(c.gwURLs[i] + "/healthz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// restartHost starts host id again (after it exited) and waits until it is ready.
func (c *cluster) restartHost(id string) {
	c.t.Helper()
	old := c.hosts[id]
	<-old.done
	c.hosts[id] = c.start(old.name, old.args[0], old.args[1:]...)
	c.waitHost(id, c.hosts[id])
}

// restartGateway starts gateway i again on its address (after it exited) and waits until
// it is healthy.
func (c *cluster) restartGateway(i int) {
	c.t.Helper()
	old := c.gateways[i]
	<-old.done
	c.gateways[i] = c.start(old.name, old.args[0], old.args[1:]...)
	c.gateway = c.gateways[0]
	c.waitGateway(i)
}

// start runs bin in its own process group, in the test's directory, with an environment
// free of HOLDFAST_* variables (they would override flags we do not pass).
func (c *cluster) start(name, bin string, args ...string) *proc {
	t := c.t
	t.Helper()
	p := &proc{name: name, args: append([]string{bin}, args...), done: make(chan struct{})}
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
	// The process outlives a subtest that restarted it.
	if c.root != nil {
		t = c.root
	}
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
func (c *cluster) do(method, name string) result { return c.doAt(c.http, c.gwURL, method, name) }

// doAt is do through client to the gateway (or balancer) at base.
func (c *cluster) doAt(client *http.Client, base, method, name string) (r result) {
	r = result{name: name, start: time.Now()}
	defer func() { r.end = time.Now() }()
	req, err := http.NewRequest(method, base+"/counter/"+name, nil)
	if err != nil {
		r.err = err
		return r
	}
	resp, err := client.Do(req)
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

// get reads name's value, which must answer 200, through the first gateway running.
func (c *cluster) get(name string) int64 {
	c.t.Helper()
	base := c.gwURL
	for i, p := range c.gateways {
		if !p.exited() {
			base = c.gwURLs[i]
			break
		}
	}
	r := c.doAt(c.http, base, http.MethodGet, name)
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
	c.objectRecords(counterClass, name, func(m *jetstream.RawStreamMsg) {
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
			t.Fatalf("record %d of %s (subject %s, % x): %v", m.Sequence, name, m.Subject, m.Data, err)
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
	})
	return epochs, value
}

// objectRecords calls fn with each record of the log of object (class, name), in order.
func (c *cluster) objectRecords(class, name string, fn func(*jetstream.RawStreamMsg)) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Direct gets may be answered by any replica: read once they have caught up.
	if err := c.nats.WaitStreamCurrent(ctx, c.js, wire.ObjectStream); err != nil {
		t.Fatal(err)
	}
	s, err := c.js.Stream(ctx, wire.ObjectStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := wire.ObjectSubjectPrefix + class + "." + names.Subject(name)
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
		fn(m)
	}
}
