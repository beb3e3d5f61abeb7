package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/bench/internal/measure"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// idleConfig keeps activated objects active through the measurement: a 2 s lease (the
// default) and an idle timeout far past the scenario.
const idleConfig = `name = "bench-idle"

[objects]
lease_ttl = "2s"
idle_timeout = "30m"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[routes]]
pattern = "/counter/{name}"
object = "COUNTER"
`

// idleResult is what the idle scenario measured.
type idleResult struct {
	activations *measure.Samples // each object's first POST, while the active count grows
	activateFor time.Duration    // wall time of the activation phase
	leaseWrites float64          // messages/s into the object lease bucket while idle
	hostWrites  float64          // messages/s into the host lease bucket while idle
	hostCores   float64          // CPU cores used by the host process while idle
	natsCores   float64          // and by nats-server
	active      int              // objects the host reported active (its announcement), or -1
	rssBefore   int64            // the host's resident memory before the first activation
	rssAfter    int64            // and with every object active and idle
}

// idle runs nats-server, one `holdfast objects` host and one gateway as separate
// processes, activates n Counters through the gateway (conc at a time), then lets them
// sit idle for window and measures what keeping them costs: JetStream writes per second
// into the lease buckets (their streams' last sequence) and the CPU of the host and of
// nats-server.
func idle(hfBin, natsBin, dir string, n, conc int, window time.Duration) (*idleResult, error) {
	p, err := startProcs(hfBin, natsBin, dir, idleConfig, 1, "idle-host")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	base, host, ns, nc := p.base, p.hosts["idle-host"], p.ns.Servers[0], p.nc

	res := &idleResult{active: -1}
	res.rssBefore, _ = measure.RSS(host.Pid())
	c := newClient(conc)
	parts := make([]*measure.Samples, conc)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		parts[w] = &measure.Samples{}
		wg.Add(1)
		go func(p *measure.Samples) {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t := time.Now()
				err := post(ctx, c, fmt.Sprintf("%s/counter/idle-%d", base, i))
				cancel()
				if err != nil {
					p.Errors++
					continue
				}
				p.Add(time.Since(t))
			}
		}(parts[w])
	}
	wg.Wait()
	res.activateFor = time.Since(start)
	res.activations = measure.Merge(parts)

	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	lastSeq := func(bucket string) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			return 0 // a version without this bucket
		}
		return s.CachedInfo().State.LastSeq
	}
	time.Sleep(time.Second) // let the activation phase's tail settle
	leases0, hosts0 := lastSeq(wire.LeaseBucket), lastSeq(wire.HostBucket)
	hostCPU0, natsCPU0 := measure.ProcCPU(host.Pid()), measure.ProcCPU(ns.Pid())
	t0 := time.Now()
	time.Sleep(window)
	secs := time.Since(t0).Seconds()
	res.leaseWrites = float64(lastSeq(wire.LeaseBucket)-leases0) / secs
	res.hostWrites = float64(lastSeq(wire.HostBucket)-hosts0) / secs
	res.hostCores = (measure.ProcCPU(host.Pid()) - hostCPU0) / secs
	res.natsCores = (measure.ProcCPU(ns.Pid()) - natsCPU0) / secs
	res.rssAfter, _ = measure.RSS(host.Pid())
	if hl, ok := hostAnnouncement(js, "idle-host"); ok {
		res.active = hl.Active
	}
	return res, nil
}

// hostAnnouncement reads host id's lease from the host bucket; false on a version of
// Holdfast without one.
func hostAnnouncement(js jetstream.JetStream, id string) (wire.HostLease, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, wire.HostBucket)
	if err != nil {
		return wire.HostLease{}, false
	}
	e, err := kv.Get(ctx, id)
	if err != nil {
		return wire.HostLease{}, false
	}
	var hl wire.HostLease
	return hl, json.Unmarshal(e.Value(), &hl) == nil
}
