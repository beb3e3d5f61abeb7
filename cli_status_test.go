package holdfast

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/status"
)

// statusOut runs `holdfast status args...` and returns what it printed.
func statusOut(t *testing.T, args ...string) string {
	t.Helper()
	var b bytes.Buffer
	stdout = &b
	defer func() { stdout = os.Stdout }()
	if err := Run(context.Background(), append([]string{"status"}, args...)); err != nil {
		t.Fatalf("holdfast status %s: %v", strings.Join(args, " "), err)
	}
	return b.String()
}

// TestStatusAgainstDev runs `holdfast dev` with its NATS exposed, activates counters, and
// reads them back with `holdfast status` as JSON and text.
func TestStatusAgainstDev(t *testing.T) {
	addr, natsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"dev", "--listen", addr, "--s3-listen", freeAddr(t), "--nats-listen", natsAddr,
			"--persist-to", t.TempDir(), "--log-level", "warn"}, WithClasses(counter.Class))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + addr
	natstest.WaitFor(t, "dev to be healthy", 20*time.Second, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for _, n := range []string{"apples", "pears", "c-3"} {
		resp, err := http.Post(base+"/counter/"+n, "", nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %v %v", n, err, resp)
		}
		resp.Body.Close()
	}
	nats := "nats://" + natsAddr

	var r status.Report
	natstest.WaitFor(t, "the host to announce its 3 objects", 10*time.Second, func() bool {
		r = status.Report{}
		if err := json.Unmarshal([]byte(statusOut(t, "--nats", nats, "--json")), &r); err != nil {
			t.Fatal(err)
		}
		return len(r.Hosts) == 1 && r.Hosts[0].Active == 3
	})
	h := r.Hosts[0]
	if h.Epoch == "" || h.Version == "" || h.Started.IsZero() || !strings.Contains(strings.Join(h.Classes, ","), "Counter") {
		t.Errorf("host announces %+v", h)
	}
	if len(r.Gateways) != 1 {
		t.Fatalf("gateways: %+v, want 1", r.Gateways)
	}
	g := r.Gateways[0]
	if g.Address != base || g.Version == "" || g.Started.IsZero() || g.Connections == nil {
		t.Errorf("gateway announces %+v, want address %s and connection counts", g, base)
	}

	var objs status.Objects
	if err := json.Unmarshal([]byte(statusOut(t, "objects", "--class", "Counter", "--nats", nats, "--json")), &objs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs.Objects {
		got = append(got, o.Name)
		if o.Host != h.ID || o.Since.IsZero() {
			t.Errorf("object %+v: want host %s and a time", o, h.ID)
		}
	}
	if strings.Join(got, " ") != "apples c-3 pears" {
		t.Errorf("active Counters %q, want [apples c-3 pears]", got)
	}

	text := statusOut(t, "--nats", nats)
	if !strings.Contains(text, "object hosts: 1 live, 3 objects active") || !strings.Contains(text, "gateways: 1 live") || !strings.Contains(text, base) {
		t.Errorf("text status:\n%s", text)
	}
	text = statusOut(t, "objects", "--class", "Counter", "--nats", nats)
	if !strings.HasPrefix(text, "Counter: 3 active\n") || !strings.Contains(text, "apples") {
		t.Errorf("text objects:\n%s", text)
	}
	if err := Run(context.Background(), []string{"status", "objects", "--nats", nats}); exitCode(err) != 2 {
		t.Errorf("status objects without --class: %v, want a usage error", err)
	}
}
