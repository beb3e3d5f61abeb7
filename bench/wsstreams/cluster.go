package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast/holdfast/bench/internal/child"
	"github.com/holdfast/holdfast/internal/natscluster"
)

// startDeployment starts Holdfast as it runs in production, on this one machine: a
// JetStream cluster of three nats-server processes (internal/natscluster), three `holdfast
// objects` hosts and two `holdfast gateway`s, all with their default settings (so every
// stream and bucket is R3), and returns it as one server: the publisher goes through the
// first gateway, subscribers through both in turn, and its CPU is every process's.
func startDeployment(dir, hfBin, natsBin string, window, ackEvery int) (*testee, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := natscluster.Start(ctx, natscluster.Options{Bin: natsBin, Dir: filepath.Join(dir, "nats"), Servers: 3})
	if err != nil {
		return nil, err
	}
	var procs []*child.Proc
	stop := func() {
		// Gateways first, then hosts (they hand their objects back), then NATS.
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
		ns.Close()
	}
	pids := func() []int {
		var out []int
		for _, s := range ns.Servers {
			out = append(out, s.Pid())
		}
		for _, p := range procs {
			out = append(out, p.Pid())
		}
		return out
	}
	fail := func(err error) (*testee, error) {
		stop()
		return nil, fmt.Errorf("%w (logs in %s; -keep keeps them)", err, dir)
	}
	for i := range 3 {
		id := fmt.Sprintf("h%d", i+1)
		p, _, err := child.Start("holdfast objects "+id, dir, filepath.Join(dir, id+".log"), "holdfast objects host", hfBin,
			"objects", "--insecure", "--nats", ns.URLs(), "--host-id", id)
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
	}
	var addrs []string
	for i := range 2 {
		addr, err := child.FreeAddr()
		if err != nil {
			return fail(err)
		}
		name := fmt.Sprintf("gateway%d", i+1)
		p, _, err := child.Start("holdfast "+name, dir, filepath.Join(dir, name+".log"), "holdfast gateway", hfBin,
			"gateway", "--insecure", "--nats", ns.URLs(), "--listen", addr)
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
		if err := child.WaitHTTP("http://"+addr+"/healthz", http.StatusOK, 30*time.Second); err != nil {
			return fail(err)
		}
		addrs = append(addrs, addr)
	}
	return &testee{stop: stop, pids: pids(), sys: holdfastSystem("Holdfast: 2 gateways, 3 hosts, 3-node R3 cluster", addrs, window, ackEvery)}, nil
}
