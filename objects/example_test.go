package objects_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

// board stores notes; each note is numbered by a shared Ticket object, asked in the
// background with Stub.Go.
type board struct{ st objects.State }

func (b *board) Fetch(w http.ResponseWriter, r *http.Request) {
	s := b.st.Storage()
	if r.Method != http.MethodPost {
		for _, e := range s.List("note/", "", 0) {
			fmt.Fprintf(w, "%s=%s\n", e.Key, e.Value)
		}
		return
	}
	note, _ := io.ReadAll(r.Body)
	key := "note/" + string(note)
	if err := s.Put(key, []byte("unnumbered")); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tickets, _ := b.st.Namespace("TICKETS").Get("shared")
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, "/", nil)
	// The board does not wait: this request is answered now, and other requests run
	// while the ticket object answers. The answer is an event of the board's own.
	err := tickets.Go(r.Context(), req, func(resp *http.Response, err error) error {
		if err != nil {
			return s.Put(key, []byte("no ticket: "+err.Error()))
		}
		n, _ := io.ReadAll(resp.Body)
		return s.Put(key, append([]byte("#"), n...))
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "stored", string(note))
}

// ticket hands out increasing numbers.
type ticket struct {
	st objects.State
	n  int
}

func (t *ticket) Fetch(w http.ResponseWriter, r *http.Request) {
	t.n++
	fmt.Fprint(w, t.n)
}

func ExampleStub_Go() {
	classes := []objects.Class{
		{Name: "Board", New: func(st objects.State) objects.Object { return &board{st} }},
		{Name: "Ticket", New: func(st objects.State) objects.Object { return &ticket{st: st} }},
	}
	// A whole cluster in one process: NATS, an object host, a gateway routing
	// /boards/{name} to Board objects.
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	ns, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Shutdown()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hnc, _ := natsembed.Connect(ns, "host")
	defer hnc.Close()
	host, err := runtime.New(context.Background(), hnc, runtime.Options{
		Classes: classes, Namespaces: map[string]string{"TICKETS": "Ticket"}, Logger: quiet,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close(context.Background())
	gnc, _ := natsembed.Connect(ns, "gateway")
	defer gnc.Close()
	gw, err := gateway.New(gnc, gateway.Options{Routes: []gateway.Route{{Pattern: "/boards/{name}", Class: "Board"}}, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close(context.Background())
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	for !gw.Ready() {
		time.Sleep(10 * time.Millisecond)
	}

	get := func() string {
		resp, err := http.Get(srv.URL + "/boards/kitchen")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, note := range []string{"milk", "eggs"} {
		resp, err := http.Post(srv.URL+"/boards/kitchen", "text/plain", strings.NewReader(note))
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(b))
		// The ticket arrives a moment later.
		for i := 0; i < 500 && strings.Contains(get(), "unnumbered"); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	fmt.Print(get())
	// Output:
	// stored milk
	// stored eggs
	// note/eggs=#2
	// note/milk=#1
}
