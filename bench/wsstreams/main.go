// Command wsstreams benchmarks durable streams over WebSocket (docs/streams.md): Holdfast
// (`holdfast dev`, a child process) beside a centrifugal/centrifuge v0.40.1 server (in-memory
// broker, no durability; ../centrifuge-server, a child process), both driven in the same run
// by this one load generator over loopback, plus the raw JetStream async-publish rate of an
// embedded nats-server measured in this process:
//
//	publish   one pipelined publisher (-pub-window unanswered), one stream: msgs/s
//	fanout    1 publisher (pipelined, -fanout-window) to each count in -subs subscribers of
//	          one stream: deliveries/s, latency from the payload's send time
//	latency   -lat-rate msgs/s, paced, to -lat-subs subscribers: p50/p99
//	idle      -idle connections subscribed to one stream, each server's VmRSS
//
// Every default is what a user gets: Holdfast subscribers connect without window= (the
// server's default, 256) and ack every -ack-every (64) messages, and publishers keep 256
// publishes in flight without pacing themselves (bursts reach the subscribers as they come).
//
// The publish and fan-out scenarios also run on Holdfast as deployed (cluster-publish,
// cluster-fanout): a JetStream cluster of three nats-server processes, three object hosts
// and two gateways on this machine, default settings (every stream R3); subscribers take
// the gateways in turn. Each such row is printed beside `holdfast dev`'s, with the ratio.
//
// Absolute numbers drift with the machine: compare ratios within one run. From the module
// root: `cd bench/wsstreams && go run .` (builds ../../cmd/holdfast and ../centrifuge-server).
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/holdfast/holdfast/bench/internal/child"
	"github.com/holdfast/holdfast/bench/internal/measure"
	"github.com/holdfast/holdfast/internal/natscluster"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type row struct {
	scenario, system string
	rate             float64 // msgs/s or deliveries/s
	unit             string
	p50, p99         time.Duration
	rssMB            float64
	target, met      string
	vsCF, vsJS       string
	vsDev            string // a deployment's row against holdfast dev's
	cores, note      string
}

type opts struct {
	d                           time.Duration
	pubWindow, fanWindow, hfWin int
	ackEvery                    int
	subs                        []int
	latSubs, idle               int
	latRate                     float64
	quiet                       time.Duration
}

func main() {
	var o opts
	root := flag.String("root", "../..", "the Holdfast module root (for go build ./cmd/holdfast)")
	hfBin := flag.String("holdfast", "", "a holdfast binary (default: built from -root)")
	cfBin := flag.String("centrifuge", "", "a centrifuge-server binary (default: built from ../centrifuge-server)")
	flag.DurationVar(&o.d, "duration", 5*time.Second, "measuring time of each scenario")
	flag.IntVar(&o.pubWindow, "pub-window", 256, "unanswered publishes in the publish scenario")
	flag.IntVar(&o.fanWindow, "fanout-window", 256, "unanswered publishes in the fan-out and latency scenarios")
	flag.IntVar(&o.hfWin, "window", 0, "Holdfast subscribers' window= (0: none given, the server's default of 256)")
	flag.IntVar(&o.ackEvery, "ack-every", 64, "Holdfast subscribers ack after this many messages")
	subsList := flag.String("subs", "100,1000", "comma-separated subscriber counts of the fan-out scenario")
	flag.IntVar(&o.latSubs, "lat-subs", 100, "subscribers in the latency scenario")
	flag.Float64Var(&o.latRate, "lat-rate", 1000, "publishes/s in the latency scenario")
	flag.IntVar(&o.idle, "idle", 10000, "idle connections")
	flag.DurationVar(&o.quiet, "quiet-wait", 15*time.Second, "wait up to this long before each scenario for the machine to go idle")
	only := flag.String("only", "", "comma-separated subset of jsraw,publish,fanout,latency,idle,cluster-publish,cluster-fanout")
	natsBin := flag.String("nats-server", "", "nats-server binary for the cluster rows (default: built from the version go.mod pins)")
	keep := flag.Bool("keep", false, "keep the temporary directory (server logs)")
	flag.BoolVar(&producers, "producers", true, "Holdfast publishes name an idempotent producer, as the Go and JS clients' do")
	flag.Parse()
	for _, f := range strings.Split(*subsList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-subs: %q is not a subscriber count", f)
		}
		o.subs = append(o.subs, n)
	}
	run := func(s string) bool { return *only == "" || strings.Contains(","+*only+",", ","+s+",") }

	fmt.Fprintf(os.Stderr, "open files limit: %d\n", raiseNoFile())
	dir, err := os.MkdirTemp("", "wsstreams-")
	if err != nil {
		fatalf("%v", err)
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if *hfBin == "" {
		*hfBin = filepath.Join(dir, "holdfast")
		if err := child.GoBuild(*root, "./cmd/holdfast", *hfBin); err != nil {
			fatalf("%v", err)
		}
	}
	if *cfBin == "" {
		*cfBin = filepath.Join(dir, "centrifuge-server")
		if err := child.GoBuild("../centrifuge-server", ".", *cfBin); err != nil {
			fatalf("%v", err)
		}
	}

	var rows []row
	var js float64
	if run("jsraw") {
		measure.WaitQuiet(o.quiet)
		fmt.Fprintf(os.Stderr, "raw JetStream, %v...\n", o.d)
		cpu := measure.NewCPUMeter(os.Getpid())
		js, err = rawJetStream(dir, o.d)
		if err != nil {
			fatalf("raw JetStream: %v", err)
		}
		rows = append(rows, row{scenario: "raw JetStream async publish, 1 subject, window 4096", system: "nats-server (in process)",
			rate: js, unit: "msgs/s", target: "–", met: "–", vsCF: "–", vsJS: "1", cores: cpu.String()})
	}

	// Holdfast first, then centrifuge, each alone on the machine. The idle scenario gets a
	// fresh server of its own: after the others, a server's heap still holds what they
	// left (Holdfast's was at ~250 MB), which is not what idle connections cost.
	devN := 0
	startHF := func() (*testee, error) {
		addr, err := child.FreeAddr()
		if err != nil {
			return nil, err
		}
		s3, _ := child.FreeAddr()
		devN++
		devDir := filepath.Join(dir, fmt.Sprintf("dev%d", devN))
		_ = os.Mkdir(devDir, 0o755)
		hf, _, err := child.Start("holdfast dev", devDir, filepath.Join(dir, fmt.Sprintf("holdfast%d.log", devN)), "holdfast dev ready", *hfBin,
			"dev", "--persist-to", filepath.Join(devDir, "state"), "--listen", addr, "--s3-listen", s3)
		if err != nil {
			return nil, err
		}
		return &testee{stop: hf.Stop, pids: []int{hf.Pid()}, sys: holdfastSystem("Holdfast (`holdfast dev`)", []string{addr}, o.hfWin, o.ackEvery)}, nil
	}
	cfN := 0
	startCF := func() (*testee, error) {
		cfAddr, _ := child.FreeAddr()
		cfN++
		cf, _, err := child.Start("centrifuge", dir, filepath.Join(dir, fmt.Sprintf("centrifuge%d.log", cfN)), "centrifuge ready", *cfBin, "-listen", cfAddr)
		if err != nil {
			return nil, err
		}
		return &testee{stop: cf.Stop, pids: []int{cf.Pid()}, sys: centrifugeSystem(cfAddr)}, nil
	}
	hfRows, err := onFreshServers(startHF, o, run)
	if err != nil {
		fatalf("Holdfast: %v", err)
	}
	// The same publish and fan-out scenarios on the distributed deployment.
	var clRows []row
	onCluster := func(sc string) bool { return (sc == "publish" || sc == "fanout") && run("cluster-"+sc) }
	if onCluster("publish") || onCluster("fanout") {
		if *natsBin == "" {
			if *natsBin, err = natscluster.Build(dir); err != nil {
				fatalf("%v", err)
			}
		}
		clN := 0
		startCluster := func() (*testee, error) {
			clN++
			return startDeployment(filepath.Join(dir, fmt.Sprintf("cluster%d", clN)), *hfBin, *natsBin, o.hfWin, o.ackEvery)
		}
		if clRows, err = onFreshServers(startCluster, o, onCluster); err != nil {
			fatalf("Holdfast cluster: %v", err)
		}
	}
	cfRows, err := onFreshServers(startCF, o, run)
	if err != nil {
		fatalf("centrifuge: %v", err)
	}

	// Targets and ratios: Holdfast rows against the centrifuge row of the same scenario.
	for i := range hfRows {
		h, c := &hfRows[i], &cfRows[i]
		switch {
		case strings.HasPrefix(h.scenario, "publish"):
			h.target, h.met = "≥ 40,000 msgs/s", yesNo(h.rate >= 40000)
			h.vsCF = ratio(h.rate, c.rate)
			h.vsJS, c.vsJS = ratio(h.rate, js), ratio(c.rate, js)
		case strings.HasPrefix(h.scenario, "fan-out"):
			h.target, h.met = "≥ centrifuge's deliveries/s", yesNo(h.rate >= c.rate)
			h.vsCF = ratio(h.rate, c.rate)
		case strings.HasPrefix(h.scenario, "latency"):
			h.target, h.met = "p99 ≤ 5 ms", yesNo(h.p99 > 0 && h.p99 <= 5*time.Millisecond)
			h.vsCF = "p99 " + ratio(float64(h.p99), float64(c.p99))
		case strings.HasPrefix(h.scenario, "idle"):
			h.target, h.met = "< 300 MB RSS", yesNo(h.rssMB > 0 && h.rssMB < 300)
			h.vsCF = "RSS " + ratio(h.rssMB, c.rssMB)
		}
		rows = append(rows, *h)
		// The cluster's row of the same scenario, beside holdfast dev's.
		for _, cl := range clRows {
			if cl.scenario == h.scenario {
				cl.vsDev = ratio(cl.rate, h.rate)
				cl.vsCF = ratio(cl.rate, c.rate)
				cl.target, cl.met = "–", "–"
				if cl.p99 > 0 && h.p99 > 0 {
					cl.vsDev += "; p99 " + ratio(float64(cl.p99), float64(h.p99))
				}
				rows = append(rows, cl)
			}
		}
		rows = append(rows, *c)
	}
	printTable(rows)
}

// testee is one system under test, started fresh: one process, or a deployment of many.
type testee struct {
	stop func()
	pids []int // every process of it, for its CPU
	sys  *system
}

// onFreshServers runs the selected scenarios but idle on one server, and idle on another.
func onFreshServers(startServer func() (*testee, error), o opts, run func(string) bool) ([]row, error) {
	var rows []row
	for _, idlePass := range []bool{false, true} {
		sel := func(sc string) bool { return run(sc) && (sc == "idle") == idlePass }
		if !sel("idle") && !sel("publish") && !sel("fanout") && !sel("latency") {
			continue
		}
		srv, err := startServer()
		if err != nil {
			return nil, err
		}
		r, err := scenarios(srv.sys, srv.pids, o, sel)
		srv.stop()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// scenarios runs every selected scenario against one server.
func scenarios(s *system, pids []int, o opts, run func(string) bool) ([]row, error) {
	ctx := context.Background()
	var rows []row
	if run("publish") {
		measure.WaitQuiet(o.quiet)
		fmt.Fprintf(os.Stderr, "%s publish, window %d, %v...\n", s.name, o.pubWindow, o.d)
		p, err := s.dialPublisher(ctx, "bench-pub")
		if err != nil {
			return nil, err
		}
		if _, err := p.run(o.pubWindow, 0, time.Second); err != nil { // warm-up
			return nil, err
		}
		cpu := measure.NewCPUMeter(pids...)
		r, err := p.run(o.pubWindow, 0, o.d)
		p.ws.Close()
		if err != nil {
			return nil, err
		}
		rows = append(rows, row{scenario: fmt.Sprintf("publish: 1 stream, 1 publisher, %d in flight", o.pubWindow), system: s.name,
			rate: float64(r.acked) / r.elapsed.Seconds(), unit: "msgs/s", cores: cpu.String(), note: errNote(r.errors, 0, 0)})
	}
	if run("fanout") {
		for _, n := range o.subs {
			r, err := fanout(ctx, s, pids, o, fmt.Sprintf("bench-fanout-%d", n), n, o.fanWindow, 0)
			if err != nil {
				return nil, err
			}
			r.scenario = fmt.Sprintf("fan-out: 1 publisher (%d in flight) → %d subscribers", o.fanWindow, n)
			rows = append(rows, r)
		}
	}
	if run("latency") {
		r, err := fanout(ctx, s, pids, o, "bench-latency", o.latSubs, o.fanWindow, o.latRate)
		if err != nil {
			return nil, err
		}
		r.scenario = fmt.Sprintf("latency: %.0f msgs/s → %d subscribers", o.latRate, o.latSubs)
		rows = append(rows, r)
	}
	if run("idle") {
		r, err := idle(ctx, s, pids[0], o)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// fanout connects n subscribers, waits until each has received a probe message, then
// publishes for o.d (pipelined with window unanswered, or paced at rate) and counts what the
// subscribers received meanwhile.
func fanout(ctx context.Context, s *system, pids []int, o opts, stream string, n, window int, rate float64) (row, error) {
	fmt.Fprintf(os.Stderr, "%s %s: %d subscribers...\n", s.name, stream, n)
	subs, err := s.dialMany(ctx, stream, n)
	if err != nil {
		return row{}, err
	}
	st := &subStats{firstSeen: make([]atomic.Bool, n)}
	var wg sync.WaitGroup
	var stopping atomic.Bool
	lats := make([]*lockedSamples, n)
	for i, c := range subs {
		lats[i] = &lockedSamples{}
		wg.Add(1)
		go s.readSub(c, i, st, lats[i], &wg, &stopping)
	}
	defer func() {
		stopping.Store(true)
		closeAll(subs)
		wg.Wait()
	}()
	pub, err := s.dialPublisher(ctx, stream)
	if err != nil {
		return row{}, err
	}
	defer pub.ws.Close()
	// Barrier: publish probes until every subscriber has one (subscriptions are live).
	for deadline := time.Now().Add(60 * time.Second); st.firstCount.Load() < int64(n); {
		if time.Now().After(deadline) {
			return row{}, fmt.Errorf("%s: only %d of %d subscribers got a message in 60 s", stream, st.firstCount.Load(), n)
		}
		if _, err := pub.run(1, 0, time.Millisecond); err != nil {
			return row{}, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	measure.WaitQuiet(o.quiet)
	fmt.Fprintf(os.Stderr, "  publishing for %v...\n", o.d)
	st.recording.Store(true)
	before := st.delivered.Load()
	cpu := measure.NewCPUMeter(pids...)
	begin := time.Now()
	r, err := pub.run(window, rate, o.d)
	if err != nil {
		return row{}, err
	}
	// Deliveries still in flight count as long as they come within 2 s of the last answer.
	want := before + r.acked*int64(n)
	for deadline := time.Now().Add(2 * time.Second); st.delivered.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(begin)
	got := st.delivered.Load() - before
	cores := cpu.String()
	st.recording.Store(false)
	parts := make([]*measure.Samples, n)
	for i, l := range lats {
		l.mu.Lock()
		parts[i] = l.s.Clone()
		l.mu.Unlock()
	}
	all := measure.Merge(parts)
	out := row{system: s.name, p50: all.Pct(0.50), p99: all.Pct(0.99), cores: cores,
		note: errNote(r.errors, st.closed.Load(), st.errors.Load())}
	if rate > 0 {
		out.rate, out.unit = float64(r.acked)/r.elapsed.Seconds(), "msgs/s"
	} else {
		out.rate, out.unit = float64(got)/elapsed.Seconds(), "deliveries/s"
	}
	if missing := want - st.delivered.Load(); missing > 0 {
		out.note = strings.TrimPrefix(out.note+fmt.Sprintf("; %d of %d deliveries missing", missing, r.acked*int64(n)), "; ")
	}
	return out, nil
}

// rssMB is VmRSS of pid in MB (10^6 bytes).
func rssMB(pid int) (float64, error) {
	b, err := measure.RSS(pid)
	return float64(b) / 1e6, err
}

// idle opens o.idle subscriber connections and reads the server's VmRSS once they settle.
func idle(ctx context.Context, s *system, pid int, o opts) (row, error) {
	measure.WaitQuiet(o.quiet)
	base, err := rssMB(pid)
	if err != nil {
		return row{}, err
	}
	fmt.Fprintf(os.Stderr, "%s idle: %d connections (server at %.0f MB)...\n", s.name, o.idle, base)
	begin := time.Now()
	conns, err := s.dialMany(ctx, "bench-idle", o.idle)
	if err != nil {
		return row{}, err
	}
	dialTime := time.Since(begin)
	st := &subStats{firstSeen: make([]atomic.Bool, o.idle)}
	var wg sync.WaitGroup
	var stopping atomic.Bool
	for i, c := range conns {
		wg.Add(1)
		go s.readSub(c, i, st, &lockedSamples{}, &wg, &stopping)
	}
	time.Sleep(5 * time.Second)
	rss, err := rssMB(pid)
	stopping.Store(true)
	closeAll(conns)
	wg.Wait()
	if err != nil {
		return row{}, err
	}
	return row{scenario: fmt.Sprintf("idle: %d subscribed connections", o.idle), system: s.name, rssMB: rss,
		note: fmt.Sprintf("%.0f MB before, %.1f KB per connection, connected in %.1f s%s", base, (rss-base)*1e3/float64(o.idle),
			dialTime.Seconds(), prefixed(errNote(0, st.closed.Load(), st.errors.Load())))}, nil
}

func errNote(pubErrs, closed, errFrames int64) string {
	var parts []string
	if pubErrs > 0 {
		parts = append(parts, fmt.Sprintf("%d publish errors", pubErrs))
	}
	if closed > 0 {
		parts = append(parts, fmt.Sprintf("%d subscribers disconnected", closed))
	}
	if errFrames > 0 {
		parts = append(parts, fmt.Sprintf("%d error frames", errFrames))
	}
	return strings.Join(parts, "; ")
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func printTable(rows []row) {
	fmt.Println("| scenario | server | rate | p50 | p99 | RSS | target | met | × centrifuge | × raw JetStream | × holdfast dev | cores | notes |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		rate := "–"
		if r.rate > 0 {
			rate = fmt.Sprintf("%s %s", thousands(r.rate), r.unit)
		}
		rss := "–"
		if r.rssMB > 0 {
			rss = fmt.Sprintf("%.0f MB", r.rssMB)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.scenario, r.system, rate,
			ms(r.p50), ms(r.p99), rss, dash(r.target), dash(r.met), dash(r.vsCF), dash(r.vsJS), dash(r.vsDev), strings.TrimPrefix(r.cores, "cores: "), r.note)
	}
}

func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "wsstreams: "+format+"\n", args...)
	os.Exit(1)
}
