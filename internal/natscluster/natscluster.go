// Package natscluster runs JetStream on real nats-server processes on loopback, for the
// tests and benchmarks that are about production: a single server, or a cluster of several
// joined by cluster routes, on free ports. Each server can be killed, paused, stopped and
// started again on its own state, and the server leading a stream can be found from the
// stream's info. It is the one place that starts nats-server processes; the binary is the
// version go.mod pins (Build).
package natscluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Build compiles the nats-server of the current module's go.mod into dir and returns its
// path. The current module is the one of the working directory (a test's package, a bench
// program's module), which must require github.com/nats-io/nats-server/v2.
func Build(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("natscluster: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("natscluster: not inside a Go module")
	}
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("natscluster: go build nats-server: %w\n%s", err, out)
	}
	return bin, nil
}

// Options describe a cluster.
type Options struct {
	// Bin is the nats-server binary (see Build). Required.
	Bin string
	// Dir holds each server's config, JetStream state and log. Required.
	Dir string
	// Servers is the number of servers: 1 is a plain single server (JetStream not
	// clustered), more are one JetStream cluster. Default 3.
	Servers int
	// Name is the cluster's name; default "holdfast".
	Name string
}

// Cluster is a set of running nats-server processes.
type Cluster struct {
	Servers []*Server
}

// Server is one nats-server process. Its name (server_name) is what stream infos call
// their leader and peers.
type Server struct {
	Name string
	// URL is its client URL, nats://127.0.0.1:<port>.
	URL     string
	conf    string
	logPath string
	bin     string
	cluster *Cluster

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited
}

// Start starts every server and returns once JetStream answers on each of them. On an
// error the servers already started are killed.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Bin == "" || o.Dir == "" {
		return nil, errors.New("natscluster: Bin and Dir are required")
	}
	if o.Servers <= 0 {
		o.Servers = 3
	}
	if o.Name == "" {
		o.Name = "holdfast"
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	ports := make([]int, 2*o.Servers)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	c := &Cluster{}
	for i := range o.Servers {
		name := fmt.Sprintf("n%d", i+1)
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %s\nlisten: 127.0.0.1:%d\n", name, ports[2*i])
		fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(o.Dir, name))
		if o.Servers > 1 {
			fmt.Fprintf(&conf, "cluster {\n  name: %s\n  listen: 127.0.0.1:%d\n  routes: [\n", o.Name, ports[2*i+1])
			for j := range o.Servers {
				if j != i {
					fmt.Fprintf(&conf, "    nats-route://127.0.0.1:%d\n", ports[2*j+1])
				}
			}
			conf.WriteString("  ]\n}\n")
		}
		s := &Server{Name: name, URL: fmt.Sprintf("nats://127.0.0.1:%d", ports[2*i]), bin: o.Bin, cluster: c,
			conf: filepath.Join(o.Dir, name+".conf"), logPath: filepath.Join(o.Dir, name+".log")}
		if err := os.WriteFile(s.conf, []byte(conf.String()), 0o644); err != nil {
			c.Close()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if err := s.spawn(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, s := range c.Servers {
		if err := s.waitJetStream(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.waitPlacement(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// waitPlacement waits until JetStream places a stream on every server. Until the meta
// leader has heard from a server since it (re)joined (its first statistics), it skips it
// ("no suitable peers for placement, peer offline"): a stream scaled up then fails.
func (c *Cluster) waitPlacement(ctx context.Context) error {
	if len(c.Servers) == 1 {
		return nil
	}
	nc, err := c.Connect("natscluster readiness")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NATSCLUSTER_READY", Subjects: []string{"natscluster.ready"},
			Storage: jetstream.MemoryStorage, Replicas: len(c.Servers)})
		if err == nil {
			return js.DeleteStream(ctx, "NATSCLUSTER_READY")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natscluster: JetStream cannot place %d replicas: %v (%w)", len(c.Servers), err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// URLs is every server's client URL, comma-separated, as holdfast's --nats takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL
	}
	return strings.Join(urls, ",")
}

// Server returns the server of that name, or nil.
func (c *Cluster) Server(name string) *Server {
	for _, s := range c.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Close kills every server and waits for them to exit. The state stays in Dir.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		_ = s.Kill()
	}
}

// Connect opens a client connection to the running servers.
func (c *Cluster) Connect(name string) (*nats.Conn, error) {
	var urls []string
	for _, s := range c.Servers {
		if s.Running() {
			urls = append(urls, s.URL)
		}
	}
	return nats.Connect(strings.Join(urls, ","), nats.Name(name), nats.Timeout(2*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
}

// StreamLeader returns the server that leads stream, as the stream's info names it.
func (c *Cluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (*Server, error) {
	info, err := streamInfo(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("natscluster: stream %s has no leader", stream)
	}
	s := c.Server(info.Cluster.Leader)
	if s == nil {
		return nil, fmt.Errorf("natscluster: stream %s is led by %q, not one of ours", stream, info.Cluster.Leader)
	}
	return s, nil
}

// WaitStreamCurrent waits until stream has a leader and every one of its replicas is
// current (caught up), e.g. after a server of the cluster restarted.
func (c *Cluster) WaitStreamCurrent(ctx context.Context, js jetstream.JetStream, stream string) error {
	return cluster.WaitCurrent(ctx, js, stream)
}

func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("natscluster: stream %s: %w", stream, err)
	}
	return s.CachedInfo(), nil
}

// spawn runs the server process on its config.
func (s *Server) spawn() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("natscluster: start %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// waitJetStream waits until a client connected to this very server gets JetStream's
// account info: the server is up and, in a cluster, has a meta leader.
func (s *Server) waitJetStream(ctx context.Context) error {
	var last error
	for {
		if !s.Running() {
			return fmt.Errorf("natscluster: %s exited:\n%s", s.Name, s.Log())
		}
		if last = s.jetStreamAnswers(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natscluster: %s: JetStream not answering: %v (%w)", s.Name, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) jetStreamAnswers(ctx context.Context) error {
	nc, err := nats.Connect(s.URL, nats.Timeout(time.Second), nats.NoReconnect(), nats.IgnoreDiscoveredServers())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// Running reports whether the process is alive (a paused one is).
func (s *Server) Running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid is the process id of the current process, 0 when none runs.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Signal sends sig to the running process.
func (s *Server) Signal(sig syscall.Signal) error {
	if !s.Running() {
		return fmt.Errorf("natscluster: %s is not running", s.Name)
	}
	return syscall.Kill(s.Pid(), sig)
}

// Kill sends SIGKILL (a paused process dies too) and waits for the exit.
func (s *Server) Kill() error {
	return s.end(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM, nats-server's graceful shutdown, and waits up to 30 s for the exit.
func (s *Server) Stop() error {
	return s.end(syscall.SIGTERM, 30*time.Second)
}

func (s *Server) end(sig syscall.Signal, within time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || !s.Running() {
		return nil
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	select {
	case <-done:
		return nil
	case <-time.After(within):
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("natscluster: %s did not exit within %v of %v", s.Name, within, sig)
	}
}

// Restart starts the server again on its config and state (after Kill or Stop) and waits
// until JetStream answers on it and places streams on it again (see waitPlacement). It
// must not be called while another server is down.
func (s *Server) Restart(ctx context.Context) error {
	if s.Running() {
		return fmt.Errorf("natscluster: %s is still running", s.Name)
	}
	if err := s.spawn(); err != nil {
		return err
	}
	if err := s.waitJetStream(ctx); err != nil {
		return err
	}
	return s.cluster.waitPlacement(ctx)
}

// Log is what the server wrote so far, over all its runs.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
