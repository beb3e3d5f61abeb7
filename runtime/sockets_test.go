package runtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
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

// shout broadcasts every message to all its sockets; "bye" closes the sender instead.
type shout struct{ st objects.State }

var shoutClass = objects.Class{Name: "Shout", New: func(st objects.State) objects.Object { return &shout{st} }}

func (o *shout) Fetch(w http.ResponseWriter, r *http.Request) {
	if _, err := o.st.Sockets().Accept(w, r, objects.SocketOptions{}); err != nil {
		http.Error(w, err.Error(), 400)
	}
}

func (o *shout) SocketMessage(ctx context.Context, s objects.Socket, m objects.Message) error {
	if string(m.Data) == "bye" {
		return s.Close(1000, "")
	}
	return o.st.Sockets().Broadcast("", m.Data)
}

func (o *shout) SocketClose(context.Context, objects.Socket, int, string) error { return nil }

// Broadcast keeps its per-gateway lists between events: a socket that comes or goes must
// show in the next broadcast.
func TestBroadcastFollowsSocketsComingAndGoing(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, Options{Classes: []objects.Class{shoutClass}})
	c := newClient(t, s)
	nc := natstest.Conn(t, s)
	got := make(chan *nats.Msg, 64)
	for _, gw := range []string{"gw1", "gw2"} {
		if _, err := nc.ChanSubscribe(wire.GatewaySubject(gw), got); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accept := func(id, gw string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Upgrade", "websocket")
		m := wire.EncodeRequest("", "Shout", "s", r, nil)
		m.Header.Set(wire.HdrSocket, id)
		m.Header.Set(wire.HdrGateway, gw)
		if reply, err := c.Request(ctx, "Shout", "s", m); err != nil || reply.Header.Get(wire.HdrAccept) != id {
			t.Fatalf("accept %s: %v %v", id, err, reply)
		}
	}
	seq := 0
	send := func(id, data string) {
		seq++
		m := nats.NewMsg("")
		m.Header.Set(wire.HdrOp, wire.OpSocketMsg)
		m.Header.Set(wire.HdrClass, "Shout")
		m.Header.Set(wire.HdrName, "s")
		m.Header.Set(wire.HdrSocket, id)
		m.Header.Set(wire.HdrSeq, strconv.Itoa(seq))
		m.Data = []byte(data)
		if _, err := c.Request(ctx, "Shout", "s", m); err != nil {
			t.Fatal(err)
		}
	}
	// expect reads the commands of one event: op and sorted ids per gateway.
	expect := func(want map[string]string) {
		t.Helper()
		have := map[string]string{}
		for len(have) < len(want) {
			select {
			case m := <-got:
				ids := strings.Split(m.Header.Get(wire.HdrSockets), ",")
				slices.Sort(ids)
				have[m.Subject] = m.Header.Get(wire.HdrOp) + " " + strings.Join(ids, ",")
			case <-ctx.Done():
				t.Fatalf("got %v, want %v", have, want)
			}
		}
		for gw, w := range want {
			if have[wire.GatewaySubject(gw)] != w {
				t.Fatalf("%s: got %q, want %q (all: %v)", gw, have[wire.GatewaySubject(gw)], w, have)
			}
		}
	}
	accept("a", "gw1")
	accept("b", "gw1")
	send("a", "one")
	expect(map[string]string{"gw1": wire.GwOpSend + " a,b"})
	accept("c", "gw2")
	send("a", "two")
	expect(map[string]string{"gw1": wire.GwOpSend + " a,b", "gw2": wire.GwOpSend + " c"})
	send("b", "bye")
	expect(map[string]string{"gw1": wire.GwOpClose + " b"})
	send("c", "three")
	expect(map[string]string{"gw1": wire.GwOpSend + " a", "gw2": wire.GwOpSend + " c"})
}
