package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dsconn is a test client that speaks durable-stream's frames exactly as its client does:
// raw JSON text, so that number spellings are checked byte for byte.
type dsconn struct {
	t *testing.T
	c *websocket.Conn
}

func dsdial(t *testing.T, f *fixture, path string) *dsconn {
	t.Helper()
	return &dsconn{t: t, c: dial(t, f, path)}
}

func (c *dsconn) send(raw string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one frame, keeping every number as its raw text.
func (c *dsconn) recv() map[string]json.RawMessage {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// ackPush echoes a push without "pub", as durable-stream's client does.
func (c *dsconn) ackPush(f map[string]json.RawMessage) {
	c.t.Helper()
	delete(f, "pub")
	b, _ := json.Marshal(f)
	c.send(string(b))
}

func wantField(t *testing.T, f map[string]json.RawMessage, key, want string) {
	t.Helper()
	if got := string(f[key]); got != want {
		t.Fatalf("%s = %s, want %s (frame %v)", key, got, want, strings.TrimSpace(dump(f)))
	}
}

func dump(f map[string]json.RawMessage) string { b, _ := json.Marshal(f); return string(b) }

func TestCompatPublishReplyAndIgnoredFrames(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	c := dsdial(t, f, "/stream/orders")
	// No cMsgId, cMsgId 0, falsy data and non-JSON frames get nothing and publish nothing.
	c.send(`{"data":{"a":1},"clientId":7}`)
	c.send(`{"data":{"a":1},"cMsgId":0,"clientId":7}`)
	c.send(`{"data":0,"cMsgId":3,"clientId":7}`)
	c.send(`not json`)
	c.send(`{"data":{"a":1},"cMsgId":0.30000000000000004,"clientId":7}`)
	r := c.recv()
	wantField(t, r, "cMsgId", "0.30000000000000004")
	wantField(t, r, "clientId", "7")
	wantField(t, r, "data", `{"a":1}`)
	wantField(t, r, "sequence", "100000000001")
	wantField(t, r, "ip", `"127.0.0.1"`)
	if _, ok := r["pub"]; ok {
		t.Fatalf("a reply has no pub: %s", dump(r))
	}
	c.send(`{"data":"two","cMsgId":1e3,"clientId":7}`)
	r = c.recv()
	wantField(t, r, "cMsgId", "1e3")
	wantField(t, r, "sequence", "100000000002")
	c.send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":2,"clientId":7}`)
	r = c.recv()
	wantField(t, r, "data", `{"cmd":"getStreamInfo"}`)
	wantField(t, r, "sequence", "100000000002")
	// An unknown cmd is published, as in the original.
	c.send(`{"data":{"cmd":"nope"},"cMsgId":3,"clientId":7}`)
	wantField(t, c.recv(), "sequence", "100000000003")
}

func TestCompatBacklogOneAtATimeThenLive(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	pub := dsdial(t, f, "/stream/a/b") // '/' maps onto the name a/b
	for i := 1; i <= 3; i++ {
		pub.send(`{"data":{"n":` + string(rune('0'+i)) + `},"cMsgId":` + string(rune('0'+i)) + `,"clientId":1}`)
		pub.recv()
	}
	sub := dsdial(t, f, "/stream/a/b")
	sub.send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":1.5,"clientId":2}`)
	r := sub.recv()
	wantField(t, r, "cMsgId", "1.5")
	wantField(t, r, "sequence", "100000000003")
	for i := 1; i <= 3; i++ {
		p := sub.recv()
		wantField(t, p, "pub", "1")
		wantField(t, p, "sequence", "10000000000"+string(rune('0'+i)))
		wantField(t, p, "data", `{"n":`+string(rune('0'+i))+`}`)
		wantField(t, p, "clientId", "1")
		wantField(t, p, "ip", `"127.0.0.1"`)
		if len(p["sMsgId"]) == 0 {
			t.Fatalf("push without sMsgId: %s", dump(p))
		}
		// Not acked yet: nothing else is pushed; the next frame is this command's reply.
		sub.send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":9,"clientId":2}`)
		wantField(t, sub.recv(), "cMsgId", "9")
		sub.ackPush(p)
	}
	// Live.
	pub.send(`{"data":"live","cMsgId":4,"clientId":1}`)
	pub.recv()
	p := sub.recv()
	wantField(t, p, "sequence", "100000000004")
	wantField(t, p, "data", `"live"`)
	sub.ackPush(p)
	// The native protocol sees the same stream; a native message reaches compat clients
	// wrapped as {"data":...}.
	n := sdial(t, f, "/v1/stream/a/b")
	n.publish("x", 1)
	p = sub.recv()
	wantField(t, p, "sequence", "100000000005")
	wantField(t, p, "data", `{"n":0,"p":"x"}`)
	// unsubscribe stops pushes.
	sub.send(`{"data":{"cmd":"unsubscribe"},"cMsgId":5,"clientId":2}`)
	wantField(t, sub.recv(), "cMsgId", "5")
	pub.send(`{"data":"after","cMsgId":6,"clientId":1}`)
	pub.recv()
	sub.send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":7,"clientId":2}`)
	r = sub.recv()
	wantField(t, r, "cMsgId", "7")
	wantField(t, r, "sequence", "100000000006")
}

func TestCompatSubscribeFromSequence(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	c := dsdial(t, f, "/stream/s")
	for i := 1; i <= 4; i++ {
		c.send(`{"data":"m","cMsgId":` + string(rune('0'+i)) + `,"clientId":1}`)
		c.recv()
	}
	// From a sequence: inclusive.
	c.send(`{"data":{"cmd":"subscribe","startSequence":100000000003},"cMsgId":8,"clientId":1}`)
	c.recv()
	p := c.recv()
	wantField(t, p, "sequence", "100000000003")
	c.ackPush(p)
	wantField(t, c.recv(), "sequence", "100000000004")
	// At the last sequence: nothing old (the original's rule), only new messages.
	d := dsdial(t, f, "/stream/s")
	d.send(`{"data":{"cmd":"subscribe","startSequence":100000000004},"cMsgId":8,"clientId":2}`)
	d.recv()
	d.send(`{"data":"new","cMsgId":9,"clientId":2}`)
	wantField(t, d.recv(), "cMsgId", "9") // the reply comes before the push
	wantField(t, d.recv(), "sequence", "100000000005")
}

func TestCompatStateAndDelete(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	c := dsdial(t, f, "/stream/st")
	c.send(`{"data":{"cmd":"getState"},"cMsgId":1,"clientId":1}`)
	wantField(t, c.recv(), "state", `{"lock":false,"sequence":100000000000}`)
	c.send(`{"data":{"cmd":"putState","state":{"lock":true,"sequence":100000000042}},"cMsgId":2,"clientId":1}`)
	wantField(t, c.recv(), "cMsgId", "2")
	c.send(`{"data":{"cmd":"getState"},"cMsgId":3,"clientId":1}`)
	wantField(t, c.recv(), "state", `{"lock":true,"sequence":100000000042}`)
	for i := 1; i <= 3; i++ {
		c.send(`{"data":"m` + string(rune('0'+i)) + `","cMsgId":4,"clientId":1}`)
		c.recv()
	}
	c.send(`{"data":{"cmd":"deleteMessages","sequence":100000000002},"cMsgId":5,"clientId":1}`)
	wantField(t, c.recv(), "sequence", "100000000003")
	c.send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":6,"clientId":1}`)
	c.recv()
	p := c.recv()
	wantField(t, p, "sequence", "100000000003")
	wantField(t, p, "data", `"m3"`)
}

func TestCompatAuthAndNames(t *testing.T) {
	_, _, f := startStreams(t, Options{APIKeys: []string{"k1"}})
	u := "ws" + strings.TrimPrefix(f.url, "http")
	if _, resp, err := websocket.DefaultDialer.Dial(u+"/stream/x", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %v %v", err, resp)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(u+"/stream/bad.name?apiKey=k1", nil); err == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad name: %v %v", err, resp)
	}
	c := dsdial(t, f, "/stream/x?apiKey=k1")
	c.send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":1,"clientId":1}`)
	wantField(t, c.recv(), "sequence", "100000000000")
}
