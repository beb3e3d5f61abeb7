// Package child runs the benchmarks' servers (holdfast, nats-server, the peers, the HTTP
// floor) as child processes on loopback: output kept in a log file for the post-mortem,
// ready once they print their ready line, stopped with SIGTERM and then SIGKILL.
package child

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// readyTimeout bounds the wait for a child's ready line.
const readyTimeout = 60 * time.Second

// Proc is a running child process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin args in dir with stdout and stderr in logPath. When ready is set, it waits
// (up to a minute) for a stdout line starting with it and returns that line.
func Start(name, dir, logPath, ready, bin string, args ...string) (*Proc, string, error) {
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
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if ready != "" && strings.HasPrefix(line, ready) {
				select {
				case lines <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, stdout)
	}()
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	if ready == "" {
		return p, "", nil
	}
	select {
	case line := <-lines:
		return p, line, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready; see %s", name, logPath)
	case <-time.After(readyTimeout):
		p.Kill()
		return nil, "", fmt.Errorf("%s not ready after %v; see %s", name, readyTimeout, logPath)
	}
}

// Stop asks the process to drain (SIGTERM) and kills it if it has not exited in 20 s.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.Kill()
	}
}

// Kill is SIGKILL: no drain, no lease hand-back. It waits (up to 5 s) for the exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// FreeAddr returns a loopback address with a port nobody listens on right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// GoBuild runs `go build -o out pkg` in dir ("" for the current one).
func GoBuild(dir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// WaitHTTP polls url until it answers with status (0: any status) or within passes.
func WaitHTTP(url string, status int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if status == 0 || resp.StatusCode == status {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New(url + " not answering in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
