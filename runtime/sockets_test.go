package runtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
)

// tally accepts sockets and counts the messages it took.
type tally struct{ st objects.State }

var tallyClass = objects.Class{Name: "Tally", New: func(st objects.State) objects.Object { return &tally{st} }}

func (t *tally) Fetch(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" {
		if _, err := t.st.Sockets().Accept(w, r, objects.SocketOptions{}); err != nil {
			http.Error(w, err.Error(), 400)
		}
		return
	}
	v, _ := t.st.Storage().Get("n")
	_, _ = w.Write(v)
}

func (t *tally) SocketMessage(ctx context.Context, s objects.Socket, m objects.Message) error {
	n := 0
	if v, ok := t.st.Storage().Get("n"); ok {
		n, _ = strconv.Atoi(string(v))
	}
	return t.st.Storage().Put("n", []byte(strconv.Itoa(n+1)))
}

func (t *tally) SocketClose(context.Context, objects.Socket, int, string) error { return nil }

func TestResentSocketMessageIsTakenOnce(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, Options{Classes: []objects.Class{tallyClass}})
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Upgrade", "websocket")
	m := wire.EncodeRequest("", "Tally", "t", r, nil)
	m.Header.Set(wire.HdrSocket, "sock1")
	m.Header.Set(wire.HdrGateway, "gw1")
	if reply, err := c.Request(ctx, "Tally", "t", m); err != nil || reply.Header.Get(wire.HdrAccept) != "sock1" {
		t.Fatalf("accept: %v %v", err, reply)
	}
	send := func(seq int) {
		m := nats.NewMsg("")
		m.Header.Set(wire.HdrOp, wire.OpSocketMsg)
		m.Header.Set(wire.HdrClass, "Tally")
		m.Header.Set(wire.HdrName, "t")
		m.Header.Set(wire.HdrSocket, "sock1")
		m.Header.Set(wire.HdrSeq, strconv.Itoa(seq))
		if _, err := c.Request(ctx, "Tally", "t", m); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []int{1, 2, 2, 1, 3, 3} {
		send(seq)
	}
	reply, err := c.Request(ctx, "Tally", "t", wire.EncodeRequest("", "Tally", "t", httptest.NewRequest("GET", "/", nil), nil))
	if err != nil || string(reply.Data) != "3" {
		t.Fatalf("took %q messages, want 3 (err %v)", reply.Data, err)
	}
}
