package browser

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// repoRoot is the main module's directory, two levels up from this nested module.
var repoRoot, _ = filepath.Abs("../..")

// TestChatInBrowser drives the chat page in headless Chromium against `holdfast dev`
// running examples/chat: two pages join one room and talk, one reloads and sees the
// history, and a burst trips the rate limiter. Screenshots go to artifacts/.
func TestChatInBrowser(t *testing.T) {
	needChromium(t)
	artifacts, err := filepath.Abs("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	base := startHoldfast(t, artifacts)

	browser := startChromium(t)

	// Each page is its own browser context (separate localStorage, where the page keeps
	// the name) and its own client IP: the server trusts X-Forwarded-For in this test, so
	// that the two people do not share one rate limit as they would behind one NAT.
	alice := newPage(t, browser, "10.9.0.1")

	room := "browser-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	alice.do(chromedp.Navigate(base+"/#"+room), chromedp.WaitVisible(chromedp.CSS("#name-input")))
	alice.shot(artifacts, "01-name.png")
	alice.do(chromedp.SendKeys(chromedp.CSS("#name-input"), "Alice\r"))
	alice.waitJS("alice is online", `document.querySelector("#status").classList.contains("online")`)

	bob := newPage(t, browser, "10.9.0.2")
	bob.do(chromedp.Navigate(base + "/"))
	bob.do(chromedp.WaitVisible(chromedp.CSS("#name-input")), chromedp.SendKeys(chromedp.CSS("#name-input"), "Bob\r"))
	bob.do(chromedp.WaitVisible(chromedp.CSS("#room-input")))
	bob.shot(artifacts, "02-room-picker.png")
	bob.do(chromedp.SendKeys(chromedp.CSS("#room-input"), room+"\r"))
	bob.waitJS("bob is online", `document.querySelector("#status").classList.contains("online")`)

	alice.waitJS("alice sees bob join", rosterHas("Bob")+` && `+lineWith(".system", "Bob joined"))
	alice.say("Hello from Alice")
	bob.waitJS("bob gets alice's message", messageFrom("Alice", "Hello from Alice"))
	bob.say("Hi Alice, Bob here")
	alice.waitJS("alice gets bob's message", messageFrom("Bob", "Hi Alice, Bob here"))
	alice.shot(artifacts, "03-alice-chatting.png")
	bob.shot(artifacts, "04-bob-chatting.png")

	// A reload rejoins (the page kept the name and the room) and shows the history.
	alice.do(chromedp.Reload())
	alice.waitJS("alice is back online", `document.querySelector("#status").classList.contains("online")`)
	alice.waitJS("alice sees the history", messageFrom("Alice", "Hello from Alice")+` && `+messageFrom("Bob", "Hi Alice, Bob here"))
	bob.waitJS("bob sees alice leave and rejoin", lineWith(".system", "Alice left")+` && `+lineWith(".system", "Alice joined"))
	alice.shot(artifacts, "05-alice-after-reload.png")

	// Every frame bob sends is reported to his IP's limiter, which lets 5 through in a
	// burst (fewer when some of the 5 seconds each costs have not passed yet) and then asks
	// for a wait; bob's session refuses frames while it waits (and while a limiter call is
	// out, as in the original) with the original's error. Of 8 frames in a row, some go
	// through, at most 5, and the rest are refused; alice sees exactly those that did.
	const burst = 8
	for i := range burst {
		bob.say(fmt.Sprint("burst ", i))
	}
	const bursts = `[...document.querySelectorAll("#messages .msg .text")].filter(e => e.textContent.startsWith("burst ")).length`
	const refusals = `[...document.querySelectorAll("#messages .error")].filter(e => e.textContent === "Your IP is being rate-limited, please try again later.").length`
	bob.waitJS("bob has every frame's outcome", fmt.Sprintf("%s + %s === %d", bursts, refusals, burst))
	bob.shot(artifacts, "06-bob-rate-limited.png")
	passed := bob.evalInt(bursts)
	if passed < 1 || passed > 5 {
		t.Errorf("%d of bob's %d burst frames went through, want 1 to 5", passed, burst)
	}
	alice.waitJS("alice got the burst's messages that went through", fmt.Sprintf("%s === %d", bursts, passed))
	// The layout on a phone-sized screen.
	alice.do(chromedp.EmulateViewport(390, 760, chromedp.EmulateScale(2)))
	alice.shot(artifacts, "07-alice-mobile.png")
}

// page is one browser tab in its own browser context.
type page struct {
	t   *testing.T
	ctx context.Context
}

func newPage(t *testing.T, browser context.Context, ip string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx}
	// The first run creates the tab, which lives as long as that run's context: it gets
	// the page's own context, without the per-step timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	// The headers need the network domain enabled.
	p.do(chromedp.Navigate("about:blank"), chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tgt, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tgt, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"X-Forwarded-For": ip},
		})
		return err
	}))
	return p
}

// do runs actions with a bound, so a stuck page fails the test rather than hanging it.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// waitJS polls a JavaScript condition in the page until it holds.
func (p *page) waitJS(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting until %s: %v", what, err)
	}
}

func (p *page) evalInt(expr string) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

func (p *page) say(text string) {
	p.t.Helper()
	p.waitJS("the composer is enabled", `!document.querySelector("#message-input").disabled`)
	p.do(chromedp.SendKeys(chromedp.CSS("#message-input"), text+"\r"))
}

func (p *page) shot(dir, name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", filepath.Join(dir, name))
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

func messageFrom(name, text string) string {
	return `[...document.querySelectorAll("#messages .msg")].some(m => m.querySelector(".who").textContent === ` +
		jsString(name) + ` && m.querySelector(".text").textContent === ` + jsString(text) + `)`
}

func lineWith(class, text string) string {
	return `[...document.querySelectorAll("#messages ` + class + `")].some(e => e.textContent === ` + jsString(text) + `)`
}

func rosterHas(name string) string {
	return `[...document.querySelectorAll("#roster li")].some(e => e.textContent === ` + jsString(name) + `)`
}

// startHoldfast builds the stock binary (or takes $HOLDFAST_BIN, when set) and runs `holdfast dev` with the chat example's
// config on free loopback ports, returning its base URL. The config is the example's with
// its commented trusted_proxy_header line switched on, which lets each page be its own IP.
func startHoldfast(t *testing.T, artifacts string) string {
	t.Helper()
	dir := t.TempDir()
	bin := holdfastBin(t, dir)
	example, err := os.ReadFile(filepath.Join(repoRoot, "examples/chat/holdfast.toml"))
	if err != nil {
		t.Fatal(err)
	}
	const commented = `# trusted_proxy_header = "X-Forwarded-For"`
	if !strings.Contains(string(example), commented) {
		t.Fatalf("examples/chat/holdfast.toml no longer has the line %q", commented)
	}
	cfg := filepath.Join(dir, "holdfast.toml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(example), commented, commented[2:], 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	addr, s3 := freeAddr(t), freeAddr(t)
	logf, err := os.Create(filepath.Join(artifacts, "holdfast.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "dev", "--config", cfg, "--listen", addr, "--s3-listen", s3,
		"--persist-to", filepath.Join(dir, "state"))
	cmd.Dir = repoRoot
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { wg.Wait(); done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("holdfast dev not ready at %s (see %s): %v", base, logf.Name(), errors.Join(err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr picks a free loopback port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
