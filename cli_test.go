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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
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

// TestReplicationRefusalsAndDefaults starts the production roles in process against
// real nats-server processes: a three-server JetStream cluster and a single server.
func TestReplicationRefusalsAndDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	c := natstest.Cluster(t, 3)
	nc, err := c.Connect(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	quiet := []string{"--log-level", "error", "--nats", c.URLs(), "--insecure"}
	refused := func(what string, args []string, want ...string) {
		t.Helper()
		err := Run(ctx, append(args, quiet...))
		if err == nil || !strings.Contains(err.Error(), "refusing to start") {
			t.Fatalf("%s: got %v, want a refusal", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", what, err, w)
			}
		}
	}
	refused("objects --replicas 1 on a cluster", []string{"objects", "--replicas", "1"}, "loses acknowledged writes", "--allow-single-replica")
	refused("gateway --replicas 1 on a cluster", []string{"gateway", "--replicas", "1", "--listen", freeAddr(t)}, "--allow-single-replica")
	if names := js.StreamNames(ctx); len(collect(names.Name())) != 0 {
		t.Fatalf("a refused start left streams behind")
	}

	// By default, every stream and bucket a host and a gateway make is R3.
	run := func(args []string, until func() bool) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- Run(rctx, append(args, quiet...)) }()
		natstest.WaitFor(t, strings.Join(args, " ")+" to be up", 30*time.Second, func() bool {
			select {
			case err := <-done:
				t.Fatalf("%v exited: %v", args, err)
			default:
			}
			return until()
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	replicas := func(stream string) int {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return 0
		}
		return s.CachedInfo().Config.Replicas
	}
	run([]string{"objects"}, func() bool { return replicas("KV_hf_alarms") > 0 })
	addr := freeAddr(t)
	run([]string{"gateway", "--listen", addr}, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	streams := collect(js.StreamNames(ctx).Name())
	for _, want := range []string{"HF_OBJECTS", "KV_hf_leases", "KV_hf_gateways", "KV_hf_alarms", "HF_BLOB_CHUNKS", "KV_HF_BLOB_META"} {
		if !slices.Contains(streams, want) {
			t.Errorf("no stream %s after a host and a gateway started (streams: %v)", want, streams)
		}
	}
	for _, s := range streams {
		if r := replicas(s); r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s, r)
		}
	}
	// An explicit single replica, accepted on a cluster, still cannot shrink them.
	refused("objects --replicas 1 --allow-single-replica on R3 streams",
		[]string{"objects", "--replicas", "1", "--allow-single-replica"}, "keeps 3 replicas", "pass --replicas 3")

	// A single server keeps one copy: asking for three says so.
	single := natstest.Cluster(t, 1)
	err = Run(ctx, []string{"objects", "--log-level", "error", "--nats", single.URLs(), "--insecure", "--replicas", "3"})
	if err == nil || !strings.Contains(err.Error(), "not a JetStream cluster") || !strings.Contains(err.Error(), "--replicas 1") {
		t.Errorf("objects --replicas 3 on a single server: %v", err)
	}
}

func collect(ch <-chan string) []string {
	var out []string
	for s := range ch {
		out = append(out, s)
	}
	return out
}

// TestGatewayAnswersBeforeJetStream: a gateway that cannot reach NATS yet listens and
// answers 503 (it is deciding its replicas), so a load balancer sees "not ready", not a
// refused or hanging connection.
func TestGatewayAnswersBeforeJetStream(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"gateway", "--insecure", "--log-level", "error", "--nats", "nats://127.0.0.1:1", "--listen", addr})
	}()
	var last string
	natstest.WaitFor(t, "a 503 from /healthz", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if !strings.Contains(last, "not connected to NATS JetStream yet") {
		t.Errorf("/healthz: %s", last)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
