package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/holdfast/holdfast/bench/internal/child"
	"github.com/holdfast/holdfast/bench/internal/measure"
)

// server is one Durable Streams server running as a child process.
type server struct {
	*child.Proc
	base string // http://127.0.0.1:<port>
}

// children are the servers started, killed by fatalf.
var children []*server

// start runs bin args with its output in logPath and waits for a stdout line starting
// with ready.
func start(name, base, dir, logPath, ready, bin string, args ...string) (*server, error) {
	p, _, err := child.Start(name, dir, logPath, ready, bin, args...)
	if err != nil {
		return nil, err
	}
	s := &server{Proc: p, base: base}
	children = append(children, s)
	return s, nil
}

// startHoldfast runs `holdfast dev` on free loopback ports with its state in dir.
func startHoldfast(bin, dir string) (*server, error) {
	addr, err := child.FreeAddr()
	if err != nil {
		return nil, err
	}
	s3, err := child.FreeAddr()
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
	if err := child.WaitHTTP(s.base+"/healthz", 0, 30*time.Second); err != nil {
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
			s.Stop()
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
	addr, err := child.FreeAddr()
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
	return s, child.WaitHTTP(s.base+"/v1/stream/__bench_probe", 0, 30*time.Second)
}

// rssMB is VmRSS of pid in MiB (2^20 bytes), 0 when unreadable.
func rssMB(pid int) float64 {
	b, _ := measure.RSS(pid)
	return float64(b) / (1 << 20)
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
	m.at, m.server, m.self = time.Now(), measure.ProcCPU(m.pid), measure.SelfCPU()
}

func (m *cpuMeter) pause() {
	m.wall += time.Since(m.at).Seconds()
	m.serverSum += measure.ProcCPU(m.pid) - m.server
	m.selfSum += measure.SelfCPU() - m.self
}

func (m *cpuMeter) done() cores {
	m.pause()
	return cores{
		server: fmt.Sprintf("%.2f", m.serverSum/m.wall),
		self:   fmt.Sprintf("%.2f", m.selfSum/m.wall),
	}
}
