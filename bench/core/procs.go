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
	"strings"
	"syscall"
	"time"
)

// goBuild builds pkg (a package path of this module or of its dependencies, at the version
// go.mod pins) into dir and returns the binary's path.
func goBuild(dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is a child process whose output goes to a log file, kept for the post-mortem.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs bin args in dir. When readyPrefix is set, it waits (up to 30s) for a stdout
// line starting with it and returns that line.
func start(name, dir, logPath, readyPrefix, bin string, args ...string) (*proc, string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if readyPrefix != "" && strings.HasPrefix(line, readyPrefix) {
				select {
				case ready <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, stdout)
	}()
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	if readyPrefix == "" {
		return p, "", nil
	}
	select {
	case line := <-ready:
		return p, line, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready; see %s", name, logPath)
	case <-time.After(30 * time.Second):
		p.kill()
		return nil, "", fmt.Errorf("%s not ready after 30s; see %s", name, logPath)
	}
}

// stop asks the process to drain (SIGTERM) and kills it if it has not exited in 20s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// kill is SIGKILL: no drain, no lease hand-back.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitHealthy polls base/healthz until it answers 200.
func waitHealthy(base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New(base + " not healthy in time")
}
