package main

// The floor: a bare net/http handler that reads an append's body and answers 204 with a
// Stream-Next-Offset, in its own process like the servers, driven by the same generator
// in the same run. What it reaches is about the most any Go net/http server can do for
// small appends on this machine with this generator, so each server is also reported as
// a share of it: every round of the small scenario is followed by one against the floor.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/holdfast/holdfast/bench/internal/child"
)

// serveFloor is the -serve-floor mode of this binary: it never returns.
func serveFloor(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf("floor: %v", err)
	}
	var seq atomic.Uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Stream-Next-Offset", fmt.Sprintf("%016d", seq.Add(1)))
		w.WriteHeader(http.StatusNoContent)
	})
	fmt.Println("floor ready " + strconv.Quote(ln.Addr().String()))
	fatalf("floor: %v", http.Serve(ln, h))
}

// startFloor runs this binary with -serve-floor on a free loopback port.
func startFloor(dir string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := child.FreeAddr()
	if err != nil {
		return nil, err
	}
	return start("floor", "http://"+addr, dir, filepath.Join(dir, "floor.log"), "floor ready", self, "-serve-floor", addr)
}
