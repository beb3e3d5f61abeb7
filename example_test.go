package holdfast_test

import (
	"net/http"

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
