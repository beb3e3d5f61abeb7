package holdfast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
)

func TestProductionRolesRefuseToStartOpen(t *testing.T) {
	ctx := context.Background()
	err := Run(ctx, []string{"gateway", "--nats", "nats://127.0.0.1:1"})
	var u *usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("gateway: %v", err)
	}
	err = Run(ctx, []string{"objects", "--nats", "nats://127.0.0.1:1"})
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("objects: %v", err)
	}
}

func TestFlagsFallBackToEnvironment(t *testing.T) {
	t.Setenv("HOLDFAST_LOG_LEVEL", "loud")
	err := Run(context.Background(), []string{"dev"})
	if err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("got %v", err)
	}
	t.Setenv("HOLDFAST_LOG_LEVEL", "")
	if err := Run(context.Background(), []string{"nope"}); exitCode(err) != 2 {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestConfigErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "holdfast.toml")
	if err := os.WriteFile(path, []byte("name = \"x\"\nroutz = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), []string{"dev", "--config", path})
	if err == nil || !strings.Contains(err.Error(), "holdfast.toml:2:") || !strings.Contains(err.Error(), "routz") {
		t.Fatalf("got %v", err)
	}
	// A class the binary lacks is found after parsing, and placed like a parse error.
	doc := "[[durable_objects.bindings]]\nname = \"ROOMS\"\nclass_name = \"ChatRom\"\n\n[[routes]]\npattern = \"/r/{name}\"\nobject = \"ROOMS\"\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), []string{"dev", "--config", path})
	if err == nil || !strings.Contains(err.Error(), "holdfast.toml:3:14: durable_objects.bindings[0].class_name: binding \"ROOMS\": class \"ChatRom\" is not built into this binary") {
		t.Fatalf("got %v", err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDevRestartKeepsState runs `holdfast dev` twice on one state directory.
func TestDevRestartKeepsState(t *testing.T) {
	state := t.TempDir()
	run := func(fn func(base, s3 string)) {
		addr, s3 := freeAddr(t), freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, []string{"dev", "--listen", addr, "--s3-listen", s3, "--persist-to", state, "--log-level", "warn"},
				WithClasses(counter.Class)) // the default config's /counter/{name}, as the stock binary has it
		}()
		base := "http://" + addr
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("dev never became healthy")
			}
			time.Sleep(20 * time.Millisecond)
		}
		fn(base, "http://"+s3)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	call := func(method, url string) string {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	put := func(url, body string) int {
		req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	run(func(base, s3 string) {
		for i := 1; i <= 3; i++ {
			if got, want := call("POST", base+"/counter/kept"), fmt.Sprintf(`200 {"name":"kept","value":%d}`, i); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
		// The file store opens in the background: wait until it takes the upload.
		deadline := time.Now().Add(20 * time.Second)
		for st := 0; st != http.StatusCreated && st != http.StatusOK; st = put(base+"/v1/files/files/notes/a.txt", "kept across restarts") {
			if time.Now().After(deadline) {
				t.Fatal("file upload never accepted")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The S3 endpoint answers, and refuses an unsigned request.
		if got := call("GET", s3+"/"); !strings.HasPrefix(got, "403 ") || !strings.Contains(got, "<Code>AccessDenied</Code>") {
			t.Fatalf("unsigned S3 request: %s", got)
		}
	})
	run(func(base, _ string) {
		if got := call("GET", base+"/counter/kept"); got != `200 {"name":"kept","value":3}` {
			t.Fatalf("after restart: %s", got)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := call("GET", base+"/v1/files/files/notes/a.txt")
			if got == "200 kept across restarts" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("file after restart: %s", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
