package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// failoverConfig is the holdfast.toml of the multi-process cluster: the counter route, and
// otherwise the defaults (a 2 s lease, so a dead host's objects move after about 2 s).
const failoverConfig = `name = "bench-failover"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[routes]]
pattern = "/counter/{name}"
object = "COUNTER"
`

// failoverResult is what the failover scenario measured.
type failoverResult struct {
	times []time.Duration // kill to first 200, per trial
	// accepted counts POSTs answered 200; value is the counter read at the end. Every
	// accepted increment must be counted exactly once, whatever was killed.
	accepted, value int64
	ambiguous       int // POSTs that failed or timed out: they may or may not have counted
}

// failover runs a JetStream cluster of three nats-server processes, three `holdfast
// objects` hosts and one `holdfast gateway` as separate processes, with their default
// settings (every stream R3), then trials times: SIGKILLs the host owning a counter and
// measures the time until the counter answers a POST with 200 again, then starts a
// replacement host.
func failover(hfBin, natsBin, dir string, trials int) (*failoverResult, error) {
	p, err := startProcs(hfBin, natsBin, dir, failoverConfig, 3, "host1", "host2", "host3")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	seq := len(p.hosts)
	hosts, base := p.hosts, p.base
	startHost := func() error {
		seq++
		return p.startHost(fmt.Sprintf("host%d", seq))
	}

	js, err := jetstream.New(p.nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	leases, err := js.KeyValue(ctx, wire.LeaseBucket)
	cancel()
	if err != nil {
		return nil, err
	}
	const name = "failover"
	url := base + "/counter/" + name
	c := newClient(1)
	res := &failoverResult{}
	send := func(timeout time.Duration) bool {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := post(ctx, c, url); err != nil {
			res.ambiguous++
			return false
		}
		res.accepted++
		return true
	}
	for range 10 {
		if !send(10 * time.Second) {
			return nil, fmt.Errorf("failover: the counter does not answer before any kill")
		}
	}
	for range trials {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e, err := leases.Get(ctx, names.Key("Counter", name))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("failover: reading the lease: %w", err)
		}
		// The entry names the live owner: the benchmark reads it before each kill. (It
		// may carry a host-lease epoch too; older versions wrote the host alone.)
		var l wire.Lease
		if err := json.Unmarshal(e.Value(), &l); err != nil {
			return nil, err
		}
		owner := hosts[l.Host]
		if owner == nil {
			return nil, fmt.Errorf("failover: lease names unknown host %q", l.Host)
		}
		owner.Kill()
		killed := time.Now()
		delete(hosts, l.Host)
		// Each probe gives up after 1s, as a client with a timeout would: a request that
		// reached the dying host is lost and would otherwise hang for the gateway's
		// request timeout (30s), which is not what this measures. Such probes are counted.
		for !send(time.Second) {
			if time.Since(killed) > 30*time.Second {
				return nil, fmt.Errorf("failover: no 200 within 30s of killing %s", l.Host)
			}
			time.Sleep(5 * time.Millisecond)
		}
		res.times = append(res.times, time.Since(killed))
		// A replacement joins, so the next trial again has a survivor to move to.
		if err := startHost(); err != nil {
			return nil, err
		}
		for range 10 {
			send(10 * time.Second)
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct{ Value int64 }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	res.value = v.Value
	return res, nil
}
