package runtime

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/objclient"
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

// socketHost starts a host serving class and returns a client of it and the commands the
// host sends to gateways gws.
func socketHost(t *testing.T, class objects.Class, gws ...string) (*objclient.Client, chan *nats.Msg) {
	t.Helper()
	s := natstest.Server(t)
	startHost(t, s, Options{Classes: []objects.Class{class}})
	nc := natstest.Conn(t, s)
	got := make(chan *nats.Msg, 64)
	for _, gw := range gws {
		if _, err := nc.ChanSubscribe(wire.GatewaySubject(gw), got); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return newClient(t, s), got
}

// acceptSocket asks object (class, name) to accept socket id held by gateway gw: the
// gateway's upgrade request to url.
func acceptSocket(ctx context.Context, t *testing.T, c *objclient.Client, class, name, url, id, gw string) *nats.Msg {
	t.Helper()
	r := httptest.NewRequest("GET", url, nil)
	r.Header.Set("Upgrade", "websocket")
	m := wire.EncodeRequest("", class, name, r, nil)
	m.Header.Set(wire.HdrSocket, id)
	m.Header.Set(wire.HdrGateway, gw)
	reply, err := c.Request(ctx, class, name, m)
	if err != nil {
		t.Fatalf("accept %s: %v", id, err)
	}
	return reply
}

// socketMessage hands object (class, name) the client message data of socket id, the
// gateway's seq-th.
func socketMessage(ctx context.Context, t *testing.T, c *objclient.Client, class, name, id string, seq int, data string) {
	t.Helper()
	m := nats.NewMsg("")
	m.Header.Set(wire.HdrOp, wire.OpSocketMsg)
	m.Header.Set(wire.HdrClass, class)
	m.Header.Set(wire.HdrName, name)
	m.Header.Set(wire.HdrSocket, id)
	m.Header.Set(wire.HdrSeq, strconv.Itoa(seq))
	m.Data = []byte(data)
	if _, err := c.Request(ctx, class, name, m); err != nil {
		t.Fatal(err)
	}
}

func TestResentSocketMessageIsTakenOnce(t *testing.T) {
	s := natstest.Server(t)
	startHost(t, s, Options{Classes: []objects.Class{tallyClass}})
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if reply := acceptSocket(ctx, t, c, "Tally", "t", "/", "sock1", "gw1"); reply.Header.Get(wire.HdrAccept) != "sock1" {
		t.Fatalf("accept: %v", reply)
	}
	for _, seq := range []int{1, 2, 2, 1, 3, 3} {
		socketMessage(ctx, t, c, "Tally", "t", "sock1", seq, "")
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
	c, got := socketHost(t, shoutClass, "gw1", "gw2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accept := func(id, gw string) {
		if reply := acceptSocket(ctx, t, c, "Shout", "s", "/", id, gw); reply.Header.Get(wire.HdrAccept) != id {
			t.Fatalf("accept %s: %v", id, reply)
		}
	}
	seq := 0
	send := func(id, data string) {
		seq++
		socketMessage(ctx, t, c, "Shout", "s", id, seq, data)
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

// texty tries to send text that is not UTF-8 every way a socket can, and records what
// each call answered.
type texty struct{ st objects.State }

var textyClass = objects.Class{Name: "Texty", New: func(st objects.State) objects.Object { return &texty{st} }}

func (o *texty) Fetch(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		v, _ := o.st.Storage().Get("got")
		_, _ = w.Write(v)
		return
	}
	if _, err := o.st.Sockets().Accept(w, r, objects.SocketOptions{Tags: []string{r.URL.Query().Get("tag")}}); err != nil {
		http.Error(w, err.Error(), 400)
	}
}

func (o *texty) SocketMessage(ctx context.Context, s objects.Socket, m objects.Message) error {
	if string(m.Data) == "done" {
		return s.Send(m.Data)
	}
	bad := []byte("\xff\xfe")
	var got []string
	for _, err := range []error{s.Send(bad), o.st.Sockets().Broadcast("", bad), s.Close(4000, string(bad)), s.SendBinary(bad)} {
		got = append(got, strconv.FormatBool(errors.Is(err, objects.ErrInvalidUTF8)))
	}
	return o.st.Storage().Put("got", []byte(strings.Join(got, " ")))
}

func (o *texty) SocketClose(context.Context, objects.Socket, int, string) error { return nil }

// TestSocketTextIsUTF8: text messages, close reasons and tags are UTF-8 (RFC 6455; tags
// live in the registry as JSON strings). The SDK refuses anything else with
// ErrInvalidUTF8 and sends nothing; a binary message takes any bytes.
func TestSocketTextIsUTF8(t *testing.T) {
	c, got := socketHost(t, textyClass, "gw1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if reply := acceptSocket(ctx, t, c, "Texty", "x", "/?tag=%FF", "bad", "gw1"); reply.Header.Get(wire.HdrAccept) != "" || !strings.Contains(string(reply.Data), objects.ErrInvalidUTF8.Error()) {
		t.Fatalf("a tag that is not UTF-8 was accepted: %q", reply.Data)
	}
	if reply := acceptSocket(ctx, t, c, "Texty", "x", "/?tag=ok", "a", "gw1"); reply.Header.Get(wire.HdrAccept) != "a" {
		t.Fatalf("accept: %q", reply.Data)
	}
	socketMessage(ctx, t, c, "Texty", "x", "a", 1, "try")
	socketMessage(ctx, t, c, "Texty", "x", "a", 2, "done")
	reply, err := c.Request(ctx, "Texty", "x", wire.EncodeRequest("", "Texty", "x", httptest.NewRequest("GET", "/", nil), nil))
	if err != nil || string(reply.Data) != "true true true false" {
		t.Fatalf("Send, Broadcast, Close, SendBinary answered ErrInvalidUTF8: %q, want true true true false (err %v)", reply.Data, err)
	}
	// The object's outputs leave in order: what the first event sent arrives before the
	// second event's "done".
	var sent []string
	for len(sent) == 0 || sent[len(sent)-1] != "done" {
		select {
		case m := <-got:
			sent = append(sent, m.Header.Get(wire.HdrOp)+" binary="+m.Header.Get(wire.HdrBinary)+" "+strconv.Quote(string(m.Data)))
			if string(m.Data) == "done" {
				sent[len(sent)-1] = "done"
			}
		case <-ctx.Done():
			t.Fatalf("sent %q, and no done", sent)
		}
	}
	if want := []string{wire.GwOpSend + ` binary=1 "\xff\xfe"`, "done"}; !slices.Equal(sent, want) {
		t.Fatalf("the gateway was sent %q, want %q", sent, want)
	}
}
