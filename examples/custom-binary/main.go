// Command custom-binary shows how to build a holdfast binary with your own object classes
// and functions: one call in main. Run it like the stock binary:
//
//	go run ./examples/custom-binary dev --config examples/custom-binary/holdfast.toml
package main

import (
	"fmt"
	"net/http"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/objects"
)

// Greeter is a tiny class: it remembers how often each name was greeted.
type Greeter struct{ st objects.State }

// Fetch greets and counts.
func (g *Greeter) Fetch(w http.ResponseWriter, r *http.Request) {
	n := 0
	if v, ok := g.st.Storage().Get("n"); ok {
		_, _ = fmt.Sscan(string(v), &n)
	}
	n++
	if err := g.st.Storage().Put("n", []byte(fmt.Sprint(n))); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "hello %s, greeting number %d\n", g.st.Name(), n)
}

// hello is an edge function that forwards to the Greeter named in the path.
func hello(w http.ResponseWriter, r *http.Request, env functions.Env) {
	stub, err := env.Namespace("GREETERS").Get(r.PathValue("who"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	stub.ServeHTTP(w, r)
}

func main() {
	holdfast.Main(
		holdfast.WithClasses(objects.Class{Name: "Greeter", New: func(st objects.State) objects.Object { return &Greeter{st} }}),
		holdfast.WithFunction("hello", functions.HandlerFunc(hello)),
	)
}
