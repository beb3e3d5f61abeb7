package browser

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// needChromium skips t without Chromium (fails it under CI, where the task installs it),
// and with -short.
func needChromium(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: run `task deps:browser` (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("%s missing: run `task deps:browser` (apt-get install chromium)", chromiumPath)
	}
}

// holdfastBin is $HOLDFAST_BIN, or the stock binary built from this tree into dir.
func holdfastBin(t *testing.T, dir string) string {
	t.Helper()
	if bin := os.Getenv("HOLDFAST_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "holdfast")
	build := exec.Command("go", "build", "-o", bin, "./cmd/holdfast")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building holdfast: %v\n%s", err, out)
	}
	return bin
}

// startChromium starts headless Chromium on a first tab (without a timeout: that would
// stop the browser) and returns its context; pages are new contexts in it.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 800),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return browser
}
