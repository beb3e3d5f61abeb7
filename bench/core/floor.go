package main

import (
	"fmt"
	"github.com/holdfast/holdfast/bench/internal/child"
	"github.com/holdfast/holdfast/bench/internal/measure"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// serveFloor is the child process of the HTTP floor baseline: a bare net/http server whose
// handler answers at once with a counter-sized JSON body. Whatever Holdfast does, it cannot
// be faster than this over the same loopback, load generator and CPUs.
func serveFloor(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Println("floor ready")
	body := []byte(`{"name":"hot","value":1}` + "\n")
	fatalf("%v", http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})))
}

// httpFloor runs the hot scenario's closed loop against serveFloor in a child process.
func httpFloor(dir string, conc int, d, quiet time.Duration) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	addr, err := child.FreeAddr()
	if err != nil {
		return result{}, err
	}
	p, _, err := child.Start("http floor", dir, filepath.Join(dir, "floor.log"), "floor ready", self, "-serve-floor", addr)
	if err != nil {
		return result{}, err
	}
	defer p.Stop()
	c := newClient(conc)
	url := func(int) string { return "http://" + addr + "/counter/hot" }
	closedLoop(c, conc, time.Second, url) // warm-up
	measure.WaitQuiet(quiet)
	cpu := measure.NewCPUMeter(p.Pid())
	r, s := closedLoop(c, conc, d, url)
	return result{
		name: fmt.Sprintf("HTTP floor: bare net/http handler, %d keep-alive clients, closed loop", conc),
		rate: r, s: s, note: cpu.String(),
	}, nil
}
