package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// corsScript calls the gateway at BASE from the page it runs in, as a browser app would:
// JSON and Authorization make every call but the last one need a CORS preflight. It
// returns, per call, the status, body and a few headers the page could read, or the
// error fetch threw when the browser refused.
const corsScript = `(async () => {
  const out = {}, auth = {Authorization: "bearer " + KEY};
  const call = async (name, url, init) => {
    try {
      const r = await fetch(BASE + url, init);
      const headers = {};
      for (const h of ["etag", "x-meta-owner", "stream-next-offset", "content-range"]) headers[h] = r.headers.get(h);
      out[name] = {status: r.status, body: await r.text(), headers};
    } catch (e) {
      out[name] = {error: String(e)};
    }
  };
  const json = {...auth, "Content-Type": "application/json"};
  await call("counter", "/counter/" + NAME, {method: "POST", headers: json, body: "{}"});
  await call("create", "/v1/stream/" + NAME, {method: "PUT", headers: json});
  await call("append", "/v1/stream/" + NAME, {method: "POST", headers: json, body: '{"n":1}'});
  await call("read", "/v1/stream/" + NAME + "?offset=-1", {headers: auth});
  await call("put", "/v1/files/files/" + NAME, {method: "PUT", headers: {...auth, "Content-Type": "text/plain", "X-Meta-Owner": "alice"}, body: "hello"});
  await call("get", "/v1/files/files/" + NAME, {headers: {...auth, Range: "bytes=0-1"}});
  await call("nokey", "/counter/" + NAME, {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
  await call("simple", "/counter/" + NAME + "?token=" + KEY);
  return JSON.stringify(out);
})()`

type corsCall struct {
	Status  int               `json:"status"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
	Error   string            `json:"error"`
}

// TestCORSInBrowser: a page on an allowed origin calls an authenticated gateway (api_keys
// set) cross-origin — an object, a stream, a file, with Authorization and JSON, so every
// call is preflighted — and reads the answers; a page on another origin is refused by
// Chromium at the preflight, and nothing it tried is stored.
func TestCORSInBrowser(t *testing.T) {
	needChromium(t)
	dir := t.TempDir()
	bin := holdfastBin(t, dir)
	page := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!doctype html><title>app</title><p>app page</p>")
		}))
		t.Cleanup(s.Close)
		return s
	}
	allowed, other := page(), page()
	const key = "k-browser-7c1f"
	cfg := fmt.Sprintf(`[durable_objects]
bindings = [{ name = "COUNTER", class_name = "Counter" }]

[[routes]]
pattern = "/counter/{name}"
object = "COUNTER"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[auth]
api_keys = [%q]
allowed_origins = [%q]
`, key, allowed.URL)
	cfgPath := filepath.Join(dir, "holdfast.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, s3 := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	stop := startDev(t, bin, addr, s3, filepath.Join(dir, "state"), filepath.Join(dir, "holdfast.log"), "--config", cfgPath)
	t.Cleanup(stop)

	browser := startChromium(t)
	run := func(pageURL, name string) map[string]corsCall {
		t.Helper()
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(ctx); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		script := "const BASE = " + jsString(base) + ", KEY = " + jsString(key) + ", NAME = " + jsString(name) + ";" + corsScript
		var out string
		err := chromedp.Do(rctx, chromedp.Navigate(pageURL), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var err error
			out, err = chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
			return err
		}))
		if err != nil {
			t.Fatal(err)
		}
		res := map[string]corsCall{}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return res
	}

	ok := run(allowed.URL, "cors-ok")
	want := map[string]func(c corsCall) bool{
		"counter": func(c corsCall) bool { return c.Status == 200 && strings.Contains(c.Body, `"value":1`) },
		"create":  func(c corsCall) bool { return c.Status == 201 },
		"append":  func(c corsCall) bool { return c.Status/100 == 2 && c.Headers["stream-next-offset"] != "" },
		"read": func(c corsCall) bool {
			return c.Status == 200 && c.Body == `[{"n":1}]` && c.Headers["stream-next-offset"] != ""
		},
		"put": func(c corsCall) bool { return c.Status == 201 && c.Headers["etag"] != "" },
		"get": func(c corsCall) bool {
			return c.Status == 206 && c.Body == "he" && c.Headers["x-meta-owner"] == "alice" && c.Headers["content-range"] == "bytes 0-1/5"
		},
		"nokey":  func(c corsCall) bool { return c.Status == 401 && strings.Contains(c.Body, `"unauthorized"`) }, // refused, and the page can read why
		"simple": func(c corsCall) bool { return c.Status == 200 && strings.Contains(c.Body, `"value":1`) },
	}
	for name, good := range want {
		if c := ok[name]; !good(c) {
			t.Errorf("allowed origin, %s: %+v", name, c)
		}
	}

	refused := run(other.URL, "cors-refused")
	for name := range want {
		if c := refused[name]; c.Error == "" || !strings.Contains(c.Error, "TypeError") {
			t.Errorf("other origin, %s: %+v, want the browser to refuse it", name, c)
		}
	}
	// Chromium never sent the preflighted calls: nothing of them is stored. (The last,
	// simple GET did reach the gateway; the page just may not read the answer.)
	get := func(path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/v1/stream/cors-refused?offset=-1"); st != 404 {
		t.Errorf("the refused page's stream: GET %d, want 404", st)
	}
	if st := get("/v1/files/files/cors-refused"); st != 404 {
		t.Errorf("the refused page's file: GET %d, want 404", st)
	}
}
