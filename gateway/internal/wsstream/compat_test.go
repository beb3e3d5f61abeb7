package wsstream_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
)

func TestCompatPublishReplyAndIgnoredFrames(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	c := gwtest.DialCompat(t, f, "/stream/orders")
	// No cMsgId, cMsgId 0, falsy data and non-JSON frames get nothing and publish nothing.
	c.Send(`{"data":{"a":1},"clientId":7}`)
	c.Send(`{"data":{"a":1},"cMsgId":0,"clientId":7}`)
	c.Send(`{"data":0,"cMsgId":3,"clientId":7}`)
	c.Send(`not json`)
	c.Send(`{"data":{"a":1},"cMsgId":0.30000000000000004,"clientId":7}`)
	r := c.Recv()
	gwtest.WantField(t, r, "cMsgId", "0.30000000000000004")
	gwtest.WantField(t, r, "clientId", "7")
	gwtest.WantField(t, r, "data", `{"a":1}`)
	gwtest.WantField(t, r, "sequence", "100000000001")
	gwtest.WantField(t, r, "ip", `"127.0.0.1"`)
	if _, ok := r["pub"]; ok {
		t.Fatalf("a reply has no pub: %s", gwtest.Dump(r))
	}
	c.Send(`{"data":"two","cMsgId":1e3,"clientId":7}`)
	r = c.Recv()
	gwtest.WantField(t, r, "cMsgId", "1e3")
	gwtest.WantField(t, r, "sequence", "100000000002")
	c.Send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":2,"clientId":7}`)
	r = c.Recv()
	gwtest.WantField(t, r, "data", `{"cmd":"getStreamInfo"}`)
	gwtest.WantField(t, r, "sequence", "100000000002")
	// An unknown cmd is published, as in the original.
	c.Send(`{"data":{"cmd":"nope"},"cMsgId":3,"clientId":7}`)
	gwtest.WantField(t, c.Recv(), "sequence", "100000000003")
}

func TestCompatBacklogOneAtATimeThenLive(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialCompat(t, f, "/stream/a/b") // '/' maps onto the name a/b
	for i := 1; i <= 3; i++ {
		pub.Send(`{"data":{"n":` + string(rune('0'+i)) + `},"cMsgId":` + string(rune('0'+i)) + `,"clientId":1}`)
		pub.Recv()
	}
	sub := gwtest.DialCompat(t, f, "/stream/a/b")
	sub.Send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":1.5,"clientId":2}`)
	r := sub.Recv()
	gwtest.WantField(t, r, "cMsgId", "1.5")
	gwtest.WantField(t, r, "sequence", "100000000003")
	for i := 1; i <= 3; i++ {
		p := sub.Recv()
		gwtest.WantField(t, p, "pub", "1")
		gwtest.WantField(t, p, "sequence", "10000000000"+string(rune('0'+i)))
		gwtest.WantField(t, p, "data", `{"n":`+string(rune('0'+i))+`}`)
		gwtest.WantField(t, p, "clientId", "1")
		gwtest.WantField(t, p, "ip", `"127.0.0.1"`)
		if len(p["sMsgId"]) == 0 {
			t.Fatalf("push without sMsgId: %s", gwtest.Dump(p))
		}
		// Not acked yet: nothing else is pushed; the next frame is this command's reply.
		sub.Send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":9,"clientId":2}`)
		gwtest.WantField(t, sub.Recv(), "cMsgId", "9")
		sub.AckPush(p)
	}
	// Live.
	pub.Send(`{"data":"live","cMsgId":4,"clientId":1}`)
	pub.Recv()
	p := sub.Recv()
	gwtest.WantField(t, p, "sequence", "100000000004")
	gwtest.WantField(t, p, "data", `"live"`)
	sub.AckPush(p)
	// The native protocol sees the same stream; a native message reaches compat clients
	// wrapped as {"data":...}.
	n := gwtest.DialStream(t, f, "/v1/stream/a/b")
	n.Publish("x", 1)
	p = sub.Recv()
	gwtest.WantField(t, p, "sequence", "100000000005")
	gwtest.WantField(t, p, "data", `{"n":0,"p":"x"}`)
	// unsubscribe stops pushes.
	sub.Send(`{"data":{"cmd":"unsubscribe"},"cMsgId":5,"clientId":2}`)
	gwtest.WantField(t, sub.Recv(), "cMsgId", "5")
	pub.Send(`{"data":"after","cMsgId":6,"clientId":1}`)
	pub.Recv()
	sub.Send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":7,"clientId":2}`)
	r = sub.Recv()
	gwtest.WantField(t, r, "cMsgId", "7")
	gwtest.WantField(t, r, "sequence", "100000000006")
}

func TestCompatSubscribeFromSequence(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	c := gwtest.DialCompat(t, f, "/stream/s")
	for i := 1; i <= 4; i++ {
		c.Send(`{"data":"m","cMsgId":` + string(rune('0'+i)) + `,"clientId":1}`)
		c.Recv()
	}
	// From a sequence: inclusive.
	c.Send(`{"data":{"cmd":"subscribe","startSequence":100000000003},"cMsgId":8,"clientId":1}`)
	c.Recv()
	p := c.Recv()
	gwtest.WantField(t, p, "sequence", "100000000003")
	c.AckPush(p)
	gwtest.WantField(t, c.Recv(), "sequence", "100000000004")
	// At the last sequence: nothing old (the original's rule), only new messages.
	d := gwtest.DialCompat(t, f, "/stream/s")
	d.Send(`{"data":{"cmd":"subscribe","startSequence":100000000004},"cMsgId":8,"clientId":2}`)
	d.Recv()
	d.Send(`{"data":"new","cMsgId":9,"clientId":2}`)
	gwtest.WantField(t, d.Recv(), "cMsgId", "9") // the reply comes before the push
	gwtest.WantField(t, d.Recv(), "sequence", "100000000005")
}

func TestCompatStateAndDelete(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	c := gwtest.DialCompat(t, f, "/stream/st")
	c.Send(`{"data":{"cmd":"getState"},"cMsgId":1,"clientId":1}`)
	gwtest.WantField(t, c.Recv(), "state", `{"lock":false,"sequence":100000000000}`)
	c.Send(`{"data":{"cmd":"putState","state":{"lock":true,"sequence":100000000042}},"cMsgId":2,"clientId":1}`)
	gwtest.WantField(t, c.Recv(), "cMsgId", "2")
	c.Send(`{"data":{"cmd":"getState"},"cMsgId":3,"clientId":1}`)
	gwtest.WantField(t, c.Recv(), "state", `{"lock":true,"sequence":100000000042}`)
	for i := 1; i <= 3; i++ {
		c.Send(`{"data":"m` + string(rune('0'+i)) + `","cMsgId":4,"clientId":1}`)
		c.Recv()
	}
	c.Send(`{"data":{"cmd":"deleteMessages","sequence":100000000002},"cMsgId":5,"clientId":1}`)
	gwtest.WantField(t, c.Recv(), "sequence", "100000000003")
	c.Send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":6,"clientId":1}`)
	c.Recv()
	p := c.Recv()
	gwtest.WantField(t, p, "sequence", "100000000003")
	gwtest.WantField(t, p, "data", `"m3"`)
}

func TestCompatAuthAndNames(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{APIKeys: []string{"k1"}})
	u := "ws" + strings.TrimPrefix(f.URL, "http")
	if _, resp, err := websocket.DefaultDialer.Dial(u+"/stream/x", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %v %v", err, resp)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(u+"/stream/bad.name?apiKey=k1", nil); err == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad name: %v %v", err, resp)
	}
	c := gwtest.DialCompat(t, f, "/stream/x?apiKey=k1")
	c.Send(`{"data":{"cmd":"getStreamInfo"},"cMsgId":1,"clientId":1}`)
	gwtest.WantField(t, c.Recv(), "sequence", "100000000000")
}
