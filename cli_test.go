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
	run := func(fn func(base string)) {
		addr := freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, []string{"dev", "--listen", addr, "--persist-to", state, "--log-level", "warn"})
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
		fn(base)
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
	run(func(base string) {
		for i := 1; i <= 3; i++ {
			if got, want := call("POST", base+"/counter/kept"), fmt.Sprintf(`200 {"name":"kept","value":%d}`, i); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
	})
	run(func(base string) {
		if got := call("GET", base+"/counter/kept"); got != `200 {"name":"kept","value":3}` {
			t.Fatalf("after restart: %s", got)
		}
	})
}
