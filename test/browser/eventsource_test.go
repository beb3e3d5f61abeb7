package browser

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// esPage opens an EventSource on the stream and keeps every message, in order, in
// window.got; window.opens counts the connections Chromium opened.
const esScript = `
window.got = []; window.opens = 0; window.reopens = 0;
function open(url) {
  const es = new EventSource(url);
  es.onopen = () => { window.opens++ };
  es.onmessage = (e) => { window.got.push(JSON.parse(e.data)); window.last = e.lastEventId };
  es.onerror = () => {
    // A reconnect that got an HTTP error (not a network error) closes the EventSource for
    // good; reopen it from the last id seen so the test still checks exactly-once.
    if (es.readyState === EventSource.CLOSED) {
      window.reopens++;
      open(STREAM + (window.last ? "?lastEventId=" + encodeURIComponent(window.last) : ""));
    }
  };
}
open(STREAM);
`

// TestEventSourceResumeInBrowser: a page's EventSource receives a stream's messages; the
// server restarts (same port, same state) mid-way and Chromium reconnects with
// Last-Event-ID; the page must hold every message exactly once, in order.
func TestEventSourceResumeInBrowser(t *testing.T) {
	needChromium(t)
	dir := t.TempDir()
	bin := holdfastBin(t, dir)
	addr, s3 := freeAddr(t), freeAddr(t)
	state := filepath.Join(dir, "state")
	base := "http://" + addr
	stream := base + "/v1/stream/browser-es"
	logPath := filepath.Join(dir, "holdfast.log")

	stop := startDev(t, bin, addr, s3, state, logPath)
	c := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, stream, nil)
	req.Header.Set("Content-Type", "application/json")
	pollOK(t, "creating the stream", func() (bool, error) {
		resp, err := c.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK, fmt.Errorf("PUT: HTTP %d", resp.StatusCode)
	})
	// An idempotent producer makes a retried append (after a 503 while the server starts)
	// safe: a duplicate is acknowledged, not stored twice.
	publish := func(n int) {
		pollOK(t, fmt.Sprint("appending ", n), func() (bool, error) {
			req, _ := http.NewRequest(http.MethodPost, stream, strings.NewReader(fmt.Sprint(n)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Producer-Id", "browser-test")
			req.Header.Set("Producer-Epoch", "0")
			req.Header.Set("Producer-Seq", fmt.Sprint(n-1))
			resp, err := c.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode/100 == 2, fmt.Errorf("POST: HTTP %d", resp.StatusCode)
		})
	}
	for n := 1; n <= 5; n++ {
		publish(n)
	}

	browser := startChromium(t)
	p := &page{t: t, ctx: browser}
	// The page must be same-origin with the stream (its EventSource responses carry no
	// CORS header): load the server's /healthz and run the script in it.
	p.do(chromedp.Navigate(base+"/healthz"),
		chromedp.Evaluate[chromedp.Void]("const STREAM = "+jsString("/v1/stream/browser-es")+";"+esScript))
	p.waitJS("the first five messages", `window.got.length >= 5`)

	// Cut every connection: stop the server, start it again on the same port and state.
	stop()
	publishedWhileDown := 0
	stop = startDev(t, bin, addr, s3, state, logPath)
	t.Cleanup(stop)
	for n := 6; n <= 10; n++ {
		publish(n)
		publishedWhileDown++
	}
	p.waitJS("all ten messages after the reconnect", `window.got.length >= 10 && window.opens >= 2`)
	got := p.evalInt(`window.got.length`)
	ordered := p.evalInt(`window.got.every((v, i) => v === i + 1) ? 1 : 0`)
	if got != 10 || ordered != 1 {
		t.Fatalf("page received %d messages (in order: %v), want 1..10 exactly once", got, ordered == 1)
	}
	t.Logf("connections opened: %d, page-level reopens after an HTTP error: %d",
		p.evalInt(`window.opens`), p.evalInt(`window.reopens`))
}

// startDev runs `holdfast dev` (with args, such as --config, after its own) and waits for
// /healthz; the returned func stops it (SIGINT, then SIGKILL after 15 s) and waits for it
// to exit.
func startDev(t *testing.T, bin, addr, s3, state, logPath string, args ...string) func() {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"dev", "--listen", addr, "--s3-listen", s3, "--persist-to", state}, args...)...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
		}
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	pollOK(t, "holdfast dev /healthz (log: "+logPath+")", func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("HTTP %d", resp.StatusCode)
	})
	return stop
}

// pollOK calls f every 50 ms until it reports true, failing the test after 30 s.
func pollOK(t *testing.T, what string, f func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
