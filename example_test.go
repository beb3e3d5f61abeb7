package holdfast_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/objects"
)

type room struct{ st objects.State }

func (r *room) Fetch(w http.ResponseWriter, req *http.Request) {
	_, _ = r.st.Sockets().Accept(w, req, objects.SocketOptions{Tags: []string{"members"}})
}

// A binary with its own class and function is one call in main; it keeps every command
// of the stock binary (dev, gateway, objects, version).
func ExampleMain() {
	roomClass := objects.Class{Name: "ChatRoom", New: func(st objects.State) objects.Object { return &room{st} }}
	edge := functions.HandlerFunc(func(w http.ResponseWriter, r *http.Request, env functions.Env) {
		stub, err := env.Namespace("ROOMS").Get(r.PathValue("room"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		stub.ServeHTTP(w, r) // WebSocket upgrades pass through to the object
	})
	if false { // Main runs the CLI and exits; this example only shows the call.
		holdfast.Main(holdfast.WithClasses(roomClass), holdfast.WithFunction("edge", edge))
	}
}

// Run embeds any command in a program of one's own: here `holdfast dev` with a class of
// the program's, on a free port, until ctx ends (an integration test of one's classes,
// say). WithReady hands over the ready line, which names the address.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "holdfast-example-")
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "holdfast.toml")
	_ = os.WriteFile(config, []byte(`
[[durable_objects.bindings]]
name = "GREETERS"
class_name = "Greeter"

[[routes]]
pattern = "/hello/{name}"
object = "GREETERS"
`), 0o644)
	greeter := objects.Class{Name: "Greeter", New: func(st objects.State) objects.Object { return greeting{st} }}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- holdfast.Run(ctx, []string{"dev", "--config", config, "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0",
			"--persist-to", filepath.Join(dir, "state"), "--log-level", "error"},
			holdfast.WithClasses(greeter), holdfast.WithReady(pw))
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n') // holdfast dev ready: http://127.0.0.1:PORT ...
	if err != nil {
		fmt.Println(err, <-done)
		return
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := strings.Fields(line)[3]
	resp, err := http.Get(base + "/hello/ada")
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(b))
	cancel()
	fmt.Println(<-done)
	// Output:
	// hello ada
	// <nil>
}

type greeting struct{ st objects.State }

func (g greeting) Fetch(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "hello %s\n", g.st.Name())
}
