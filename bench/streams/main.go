// Command streams benchmarks Durable Streams over HTTP: Holdfast (`holdfast dev`, a child
// process) beside the Node reference server @durable-streams/server (file-backed, a child
// process, pinned in node/package-lock.json), both driven in the same run by the same Go load
// generator over keep-alive HTTP/1.1 on loopback (h1.go for the append scenarios):
//
//	round trip   a long-poll GET parked at the tail, then a 100 B append; time from the
//	             append's send to the read's last byte (p50/p99)
//	small        -appends appends of 100 B at -concurrency, to one stream (appends/s)
//	large        -large appends of 1 MB at -large-concurrency, to one stream (MB/s)
//	eventsource  -es-conns idle EventSource connections to Holdfast from this process, the
//	             holdfast process's VmRSS; then one message per stream, which every
//	             connection must receive
//	floor        the small scenario against a bare net/http handler (floor.go), the most a
//	             Go HTTP server reaches here with this generator
//
// Absolute numbers drift with the machine: compare the two servers within one run.
//
// Usage, from the module root:
//
//	go run ./bench/streams [-rounds 5] [-es-conns 10000] [-skip-node]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

func main() {
	hfBin := flag.String("holdfast", "", "holdfast binary to use (default: build ./cmd/holdfast)")
	rounds := flag.Int("rounds", 5, "repeat the small and large append scenarios this many times (the table shows the median round)")
	rtN := flag.Int("round-trips", 300, "append→long-poll round trips")
	appends := flag.Int("appends", 1000, "small appends per round")
	conc := flag.Int("concurrency", 75, "clients of the small-append scenario")
	large := flag.Int("large", 50, "1 MB appends per round")
	largeConc := flag.Int("large-concurrency", 15, "clients of the large-append scenario")
	esConns := flag.Int("es-conns", 10000, "idle EventSource connections to Holdfast (0 skips)")
	esStreams := flag.Int("es-streams", 100, "streams the EventSource connections spread over")
	skipNode := flag.Bool("skip-node", false, "do not run the Node reference server")
	onlyES := flag.Bool("only-eventsource", false, "run only the idle EventSource scenario (implies -skip-node)")
	keep := flag.Bool("keep", false, "keep the temporary directory (process logs, state)")
	skipFloor := flag.Bool("skip-floor", false, "do not measure the bare net/http handler (the floor)")
	floorAddr := flag.String("serve-floor", "", "internal: serve the floor's bare handler at this address")
	flag.Parse()
	if *floorAddr != "" {
		serveFloor(*floorAddr)
	}

	// Both the connections this process holds and the ones the child holds (it inherits the
	// limit) need far more than the usual 1,024 descriptors.
	if err := raiseNofile(uint64(*esConns) + 4096); err != nil {
		fatalf("%v", err)
	}
	dir, err := os.MkdirTemp("", "holdfast-bench-streams-")
	if err != nil {
		fatalf("%v", err)
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if *hfBin == "" {
		*hfBin = filepath.Join(dir, "holdfast-bin")
		cmd := exec.Command("go", "build", "-o", *hfBin, "./cmd/holdfast")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fatalf("go build ./cmd/holdfast: %v (run from the module root)", err)
		}
	}
	cfg := config{rounds: *rounds, rtN: *rtN, appends: *appends, conc: *conc, large: *large, largeConc: *largeConc}

	var floor *server
	if !*skipFloor && !*onlyES {
		if floor, err = startFloor(dir); err != nil {
			fatalf("floor: %v", err)
		}
		defer floor.Stop()
	}
	var hfRes *scenarioResults
	if !*onlyES {
		hf, err := startHoldfast(*hfBin, dir)
		if err != nil {
			fatalf("%v", err)
		}
		fmt.Fprintln(os.Stderr, "holdfast dev at", hf.base)
		hfRes, err = runScenarios("holdfast", hf, cfg, floor)
		hf.Stop()
		if err != nil {
			fatalf("holdfast: %v (logs in %s; rerun with -keep)", err, dir)
		}
	}
	var es *esResult
	if *esConns > 0 {
		// A fresh server: after the append scenarios the heap still holds what they left
		// (~240 MB), which is not what idle connections cost.
		hf, err := startHoldfast(*hfBin, dir)
		if err != nil {
			fatalf("%v", err)
		}
		fmt.Fprintf(os.Stderr, "eventsource: %d idle connections over %d streams...\n", *esConns, *esStreams)
		es, err = idleEventSources(hf, *esConns, *esStreams)
		hf.Stop()
		if err != nil {
			fatalf("eventsource: %v", err)
		}
	}

	var nodeRes *scenarioResults
	if !*skipNode && !*onlyES {
		node, err := startNode(dir)
		if err != nil {
			fatalf("%v", err)
		}
		fmt.Fprintln(os.Stderr, "node reference server at", node.base)
		nodeRes, err = runScenarios("node", node, cfg, floor)
		node.Stop()
		if err != nil {
			fatalf("node: %v (logs in %s; rerun with -keep)", err, dir)
		}
	}
	printTable(cfg, hfRes, nodeRes, es, *esConns, floor != nil)

}

func raiseNofile(want uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= want {
		return nil
	}
	rl.Cur = min(want, rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", rl.Cur, err)
	}
	if rl.Cur < want {
		fmt.Fprintf(os.Stderr, "RLIMIT_NOFILE hard limit is %d, below the %d wanted\n", rl.Max, want)
	}
	return nil
}

func printTable(cfg config, hf, node *scenarioResults, es *esResult, esConns int, floor bool) {
	fmt.Printf("\n%d CPUs, GOMAXPROCS %d, %s\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))
	fmt.Println("| scenario | Holdfast | Node reference (file) | × Node | target | met | cores: holdfast / node / load gen |")
	fmt.Println("| --- | ---: | ---: | ---: | --- | --- | --- |")
	nodeOr := func(f func(*scenarioResults) string) string {
		if node == nil {
			return "–"
		}
		return f(node)
	}
	ratio := func(a, b float64) string {
		if node == nil || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f×", a/b)
	}
	cores := func(h, n string, hl, nl string) string {
		if node == nil {
			return fmt.Sprintf("%s / – / %s", h, hl)
		}
		return fmt.Sprintf("%s / %s / %s (holdfast run), %s (node run)", h, n, hl, nl)
	}
	if hf != nil {
		p50 := hf.rt.pct(0.50)
		fmt.Printf("| append→long-poll round trip, 100 B, p50 (%d trips) | %s | %s | %s | p50 < 2 ms | %s | %s |\n",
			len(hf.rt.d), ms(p50), nodeOr(func(r *scenarioResults) string { return ms(r.rt.pct(0.5)) }),
			ratio(float64(nodeOrDur(node, func(r *scenarioResults) time.Duration { return r.rt.pct(0.5) })), float64(p50)),
			yesNo(p50 < 2*time.Millisecond), cores(hf.rtCPU.server, nodeOr(func(r *scenarioResults) string { return r.rtCPU.server }), hf.rtCPU.self, nodeOr(func(r *scenarioResults) string { return r.rtCPU.self })))
		fmt.Printf("| same, p99 | %s | %s | – | – | – | |\n", ms(hf.rt.pct(0.99)), nodeOr(func(r *scenarioResults) string { return ms(r.rt.pct(0.99)) }))
		smallTarget := hf.small >= 30000
		smallRatio := node == nil || (node.small > 0 && hf.small >= 10*node.small)
		fmt.Printf("| %d appends of 100 B, %d concurrent, one stream (appends/s, median of %d; p50/p99 per append %s / %s) | %.0f | %s | %s | ≥ 30,000/s and ≥ 10× Node | %s | %s |\n",
			cfg.appends, cfg.conc, cfg.rounds, ms(hf.smallLat.pct(0.5)), ms(hf.smallLat.pct(0.99)), hf.small,
			nodeOr(func(r *scenarioResults) string {
				return fmt.Sprintf("%.0f (p50/p99 %s / %s)", r.small, ms(r.smallLat.pct(0.5)), ms(r.smallLat.pct(0.99)))
			}),
			ratio(hf.small, nodeOrF(node, func(r *scenarioResults) float64 { return r.small })),
			both(smallTarget, smallRatio),
			cores(hf.smallCPU.server, nodeOr(func(r *scenarioResults) string { return r.smallCPU.server }), hf.smallCPU.self, nodeOr(func(r *scenarioResults) string { return r.smallCPU.self })))
		fmt.Printf("| %d appends of 1 MB, %d concurrent, one stream (MB/s, median of %d) | %.0f | %s | %s | – | – | %s |\n",
			cfg.large, cfg.largeConc, cfg.rounds, hf.large,
			nodeOr(func(r *scenarioResults) string { return fmt.Sprintf("%.0f", r.large) }),
			ratio(hf.large, nodeOrF(node, func(r *scenarioResults) float64 { return r.large })),
			cores(hf.largeCPU.server, nodeOr(func(r *scenarioResults) string { return r.largeCPU.server }), hf.largeCPU.self, nodeOr(func(r *scenarioResults) string { return r.largeCPU.self })))
	}
	if es != nil {
		fmt.Printf("| %d idle EventSource connections (%d streams): holdfast VmRSS (%.0f MB before; opened in %s; %d of %d got the next message, in %s) | %.0f MB | – | – | < 300 MB | %s | |\n",
			esConns, es.streams, es.rssBefore, es.openTime.Round(time.Millisecond), es.delivered, es.open, es.deliverTime.Round(time.Millisecond), es.rss,
			yesNo(es.rss < 300 && es.open == esConns && es.delivered == esConns))
	}
	if floor && hf != nil {
		fmt.Printf("\nFloor, a bare net/http handler answering 204, each round right after the server's (same generator): %.0f appends/s in the Holdfast run (Holdfast at %.0f%% of it, median of the paired rounds)",
			hf.floor, 100*hf.ofFloor)
		if node != nil {
			fmt.Printf(", %.0f appends/s in the Node run (Node at %.0f%%)", node.floor, 100*node.ofFloor)
		}
		fmt.Println(".")
	}
}

func nodeOrF(n *scenarioResults, f func(*scenarioResults) float64) float64 {
	if n == nil {
		return 0
	}
	return f(n)
}

func nodeOrDur(n *scenarioResults, f func(*scenarioResults) time.Duration) time.Duration {
	if n == nil {
		return 0
	}
	return f(n)
}

func both(a, b bool) string {
	switch {
	case a && b:
		return "yes"
	case a:
		return "NO (ratio)"
	case b:
		return "NO (rate)"
	}
	return "NO"
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// ms formats d in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v == 0:
		return "–"
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 100:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", math.Round(v))
}

func fatalf(format string, args ...any) {
	for _, c := range children {
		c.Kill()
	}
	fmt.Fprintf(os.Stderr, "bench/streams: "+format+"\n", args...)
	os.Exit(1)
}
