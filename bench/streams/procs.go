package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one Durable Streams server running as a child process.
type server struct {
	name string
	base string // http://127.0.0.1:<port>
	cmd  *exec.Cmd
	done chan struct{}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs bin args with its output in logPath and waits (up to 60s) for a stdout line
// starting with ready.
func start(name, base, dir, logPath, ready, bin string, args ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{name: name, base: base, cmd: cmd, done: make(chan struct{})}
	children = append(children, s)
	readyc := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if strings.HasPrefix(sc.Text(), ready) {
				select {
				case readyc <- struct{}{}:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, stdout)
	}()
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	select {
	case <-readyc:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before it was ready; see %s", name, logPath)
	case <-time.After(60 * time.Second):
		s.kill()
		return nil, fmt.Errorf("%s not ready after 60s; see %s", name, logPath)
	}
}

// children are the servers started, killed by fatalf.
var children []*server

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// startHoldfast runs `holdfast dev` on free loopback ports with its state in dir.
func startHoldfast(bin, dir string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s3, err := freeAddr()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(dir, "holdfast-") // each server starts empty
	if err != nil {
		return nil, err
	}
	// The default [limits] max_storage_value_bytes (128 KiB) caps one append below the
	// 1 MB scenario; 1 MiB is the most one log record of an object may hold.
	cfg := filepath.Join(work, "holdfast.toml")
	if err := os.WriteFile(cfg, []byte("[limits]\nmax_storage_value_bytes = 1048576\n"), 0o644); err != nil {
		return nil, err
	}
	s, err := start("holdfast dev", "http://"+addr, work, filepath.Join(work, "holdfast.log"), "holdfast dev ready", bin,
		"dev", "--config", cfg, "--persist-to", filepath.Join(work, "state"), "--listen", addr, "--s3-listen", s3,
		"--long-poll-timeout", "30s", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	if err := waitUp(s.base+"/healthz", 30*time.Second); err != nil {
		return nil, err
	}
	// /healthz answers before the stream objects can be reached: poll an append to a
	// probe stream until it succeeds.
	c := newClient(1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := create(c, s.base+"/v1/stream/bench-probe")
		if err == nil {
			if _, err = appendBody(c, s.base+"/v1/stream/bench-probe", []byte("probe")); err == nil {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("holdfast dev not taking appends: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startNode runs the Node reference server file-backed (dataDir in dir), installing the
// pinned package first when bench/streams/node/node_modules is missing.
func startNode(dir string) (*server, error) {
	nodeDir, err := filepath.Abs("bench/streams/node")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules/@durable-streams/server")); err != nil {
		// npm install, not npm ci: the lock pins the versions, but npm ci refuses a lock
		// that lacks optional platform packages (msgpackr-extract's) a registry mirror
		// may not serve.
		fmt.Fprintln(os.Stderr, "npm install in", nodeDir)
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--no-save")
		cmd.Dir, cmd.Stdout, cmd.Stderr = nodeDir, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("npm install in %s: %w (run from the module root)", nodeDir, err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	data := filepath.Join(dir, "node-data")
	s, err := start("node reference server", "http://"+addr, nodeDir, filepath.Join(dir, "node.log"), "ready ", "node",
		"serve.mjs", port, data, "30000")
	if err != nil {
		return nil, err
	}
	return s, waitUp(s.base+"/v1/stream/__bench_probe", 30*time.Second)
}

// waitUp polls url until it answers at all (any status).
func waitUp(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(url + " not answering in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rssMB is VmRSS of pid in MB, from /proc/<pid>/status.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuMeter reports the cores the server process and this load generator used, over the
// time it ran (pause and resume leave out what happens between them).
type cpuMeter struct {
	pid          int
	at           time.Time
	server, self float64 // readings at the last start
	// totals up to the last pause
	wall, serverSum, selfSum float64
}

type cores struct{ server, self string }

func newCPUMeter(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid}
	m.resume()
	return m
}

func (m *cpuMeter) resume() {
	m.at, m.server, m.self = time.Now(), procCPU(m.pid), selfCPU()
}

func (m *cpuMeter) pause() {
	m.wall += time.Since(m.at).Seconds()
	m.serverSum += procCPU(m.pid) - m.server
	m.selfSum += selfCPU() - m.self
}

func (m *cpuMeter) done() cores {
	m.pause()
	return cores{
		server: fmt.Sprintf("%.2f", m.serverSum/m.wall),
		self:   fmt.Sprintf("%.2f", m.selfSum/m.wall),
	}
}

// procCPU is the user+system CPU seconds of pid (USER_HZ = 100), 0 when unreadable.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
