package wsstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/gateway/internal/wsstream"
	"github.com/holdfast/holdfast/internal/natstest"
)

func TestStreamPublishSubscribeOrder(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	sub := gwtest.DialStream(t, f, "/v1/stream/chat/room1")
	pub := gwtest.DialStream(t, f, "/v1/stream/chat/room1?from=latest")
	seqs := pub.Publish("a", 50)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v", seqs)
		}
	}
	got := sub.Messages(1, 50)
	for i, m := range got {
		var d struct{ N int }
		_ = json.Unmarshal(m.Data, &d)
		if d.N != i || m.Stream != "chat/room1" {
			t.Fatalf("message %d: %+v %s", i, m, m.Data)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.Time); err != nil {
			t.Fatalf("time %q: %v", m.Time, err)
		}
	}
	// The publisher itself, from latest, gets the same messages too.
	pub.Messages(1, 50)
	r := sub.Command("i1", "getStreamInfo", nil)
	if r.Type != "reply" || !strings.Contains(string(r.Result), `"firstSeq":1,"lastSeq":50`) || !strings.Contains(string(r.Result), `"subscribers":2`) {
		t.Fatalf("getStreamInfo: %+v %s", r, r.Result)
	}
	r = sub.Command("i2", "getServerInfo", nil)
	if r.Type != "reply" || !strings.Contains(string(r.Result), `"node"`) {
		t.Fatalf("getServerInfo: %s", r.Result)
	}
}

func TestStreamReplayBoundaries(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/r?from=latest")
	pub.Publish("a", 10)
	all := gwtest.DialStream(t, f, "/v1/stream/r")
	mid := gwtest.DialStream(t, f, "/v1/stream/r?from=5")
	latest := gwtest.DialStream(t, f, "/v1/stream/r?from=latest")
	// Make sure the latest subscriber is registered before publishing more.
	latest.Command("c", "getStreamInfo", nil)
	all.Messages(1, 10)
	mid.Messages(5, 6)
	pub.Publish("b", 3)
	all.Messages(11, 3)
	mid.Messages(11, 3)
	latest.Messages(11, 3)
}

func TestStreamReplayHandsOverToLiveUnderLoad(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/h?from=latest")
	pub.Publish("a", 300)
	// Subscribers join while publishing continues: none may miss or repeat a seq.
	done := make(chan []uint64)
	go func() { done <- pub.PublishAsync("b", 300) }()
	subs := []*gwtest.StreamConn{gwtest.DialStream(t, f, "/v1/stream/h"), gwtest.DialStream(t, f, "/v1/stream/h?window=7")}
	<-done
	for _, s := range subs {
		for seq := uint64(1); seq <= 600; seq++ {
			s.Messages(seq, 1)
			s.Write(map[string]any{"type": "ack", "seq": seq})
		}
	}
}

func TestStreamWindowAndAcks(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/w?from=latest")
	pub.Publish("a", 20)
	sub := gwtest.DialStream(t, f, "/v1/stream/w?window=5")
	sub.Messages(1, 5)
	// Nothing more until an ack opens the window.
	r := sub.Command("x", "getServerInfo", nil)
	if r.Type != "reply" {
		t.Fatal(r)
	}
	sub.Write(map[string]any{"type": "ack", "seq": 3})
	sub.Messages(6, 3)
	sub.Write(map[string]any{"type": "ack", "seq": 8})
	sub.Messages(9, 5)
	sub.Write(map[string]any{"type": "ack", "seq": 99})
	if e := sub.Next("error"); e.Code != "bad_ack" {
		t.Fatalf("%+v", e)
	}
}

func TestStreamDurableResume(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	pub := gwtest.DialStream(t, f, "/v1/stream/d?from=latest")
	pub.Publish("a", 8)
	c1 := gwtest.DialStream(t, f, "/v1/stream/d?client=worker-1")
	c1.Messages(1, 8)
	c1.Write(map[string]any{"type": "ack", "seq": 5})
	natstest.WaitFor(t, "the ack to be stored", 10*time.Second, func() bool {
		a, err := f.StreamClient(t).ClientAck(context.Background(), "d", "worker-1")
		return err == nil && a.Seq == 5
	})
	_ = c1.C.Close()
	c2 := gwtest.DialStream(t, f, "/v1/stream/d?client=worker-1")
	c2.Messages(6, 3)
	// An explicit from wins over the stored position.
	c3 := gwtest.DialStream(t, f, "/v1/stream/d?client=worker-1&from=2")
	c3.Messages(2, 7)
}

func TestStreamSlowConsumerIsClosed(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{StreamQueueBytes: 256 << 10})
	slow := gwtest.DialStream(t, f, "/v1/stream/s?window=65536")
	fast := gwtest.DialStream(t, f, "/v1/stream/s?window=65536")
	// The publisher takes one delivery and never acks: it only sees its "published".
	pub := gwtest.DialStream(t, f, "/v1/stream/s?window=1")
	// The fast client reads all the time, checking order.
	var fastLast atomic.Uint64
	fastErr := make(chan error, 1)
	go func() {
		for {
			_ = fast.C.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, b, err := fast.C.ReadMessage()
			if err != nil {
				fastErr <- err
				return
			}
			var fr gwtest.Frame
			_ = json.Unmarshal(b, &fr)
			if fr.Type != "message" || fr.Seq != fastLast.Load()+1 {
				fastErr <- fmt.Errorf("fast client: %s after %d", b, fastLast.Load())
				return
			}
			fastLast.Store(fr.Seq)
		}
	}()
	blob := strings.Repeat("x", 4<<10)
	published := 0
	// Publish until the slow client overflows (its socket buffers fill first).
	for round := 0; wsstream.SlowClosed(f.GW.ID()) == 0; round++ {
		if round > 2000 {
			t.Fatal("the slow consumer was never closed")
		}
		for i := 0; i < 32; i++ {
			pub.Write(map[string]any{"type": "publish", "id": "p", "data": blob})
		}
		for i := 0; i < 32; i++ {
			pub.Next("published")
		}
		published += 32
		// The fast client keeps up (a round is half its queue): a loaded machine must not
		// make it a slow consumer too.
		natstest.WaitFor(t, "the fast client to keep up", 20*time.Second, func() bool {
			select {
			case err := <-fastErr:
				t.Fatal(err)
			default:
			}
			return fastLast.Load() == uint64(published)
		})
	}
	natstest.WaitFor(t, "the fast client to get everything", 20*time.Second, func() bool {
		select {
		case err := <-fastErr:
			t.Fatal(err)
		default:
		}
		return fastLast.Load() == uint64(published)
	})
	// The slow client reads what made it out, in order, then the close frame.
	_ = slow.C.SetReadDeadline(time.Now().Add(20 * time.Second))
	var last uint64
	for {
		_, b, err := slow.C.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != gateway.CloseSlowConsumer {
				t.Fatalf("slow client: %v, want close %d", err, gateway.CloseSlowConsumer)
			}
			break
		}
		var fr gwtest.Frame
		_ = json.Unmarshal(b, &fr)
		if fr.Seq != last+1 {
			t.Fatalf("slow client got %d after %d", fr.Seq, last)
		}
		last = fr.Seq
	}
	if last >= uint64(published) {
		t.Fatalf("slow client got everything (%d)", last)
	}
	// The fast one still works.
	pub.Publish("z", 1)
	natstest.WaitFor(t, "the fast client to get the last one", 20*time.Second, func() bool { return fastLast.Load() == uint64(published+1) })
}

func TestStreamBadFrames(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{MaxMessage: 32 << 10})
	c := gwtest.DialStream(t, f, "/v1/stream/b")
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	cases := []struct {
		frame    string
		binary   bool
		id, code string
		msg      string // the message says this, when set
	}{
		{frame: `not json`, code: "bad_json", msg: "not valid JSON"},
		{frame: `[1,2]`, code: "bad_json", msg: "not an array"},
		{frame: deep(10000), code: "bad_json", msg: "nested at most 10000 levels deep"},
		{frame: `{"type":"command","id":"c0","command":"deleteMessages","args":{"upTo":1e18}}`, id: "c0", code: "bad_args",
			msg: "args.upTo must be a whole number from 0 to 18446744073709551615, written without a fraction or exponent"},
		{frame: `{"type":"command","id":"c01","command":"subscribe","args":{"stream":5}}`, id: "c01", code: "bad_args", msg: "args.stream must be a string"},
		{frame: `{"type":"nope","id":"u1"}`, id: "u1", code: "unknown_type"},
		{frame: `{"id":"t1"}`, id: "t1", code: "bad_field"},
		{frame: `{"type":7,"id":"t2"}`, id: "t2", code: "bad_field"},
		{frame: `{"type":"publish","id":"p1"}`, id: "p1", code: "bad_field"},
		{frame: `{"type":"publish","data":1}`, code: "bad_field"},
		{frame: `{"type":"publish","id":5,"data":1}`, code: "bad_field"},
		{frame: `{"type":"ack"}`, code: "bad_field"},
		{frame: `{"type":"ack","seq":"3","id":"a1"}`, id: "a1", code: "bad_field"},
		{frame: `{"type":"ack","seq":-1}`, code: "bad_field"},
		{frame: `{"type":"ack","seq":1.5}`, code: "bad_field"},
		{frame: `{"type":"ack","seq":1,"stream":"other"}`, code: "bad_ack"},
		{frame: `{"type":"command","id":"c1"}`, id: "c1", code: "bad_field"},
		{frame: `{"type":"command","id":"c2","command":"fly"}`, id: "c2", code: "unknown_command"},
		{frame: `{"type":"command","id":"c3","command":"subscribe","args":{"stream":"a b"}}`, id: "c3", code: "bad_name"},
		{frame: `{"type":"command","id":"c4","command":"subscribe","args":{"stream":"x","from":0}}`, id: "c4", code: "bad_args"},
		{frame: `{"type":"command","id":"c5","command":"subscribe","args":{"stream":"b"}}`, id: "c5", code: "already_subscribed"},
		{frame: `{"type":"command","id":"c6","command":"deleteMessages","args":{"upTo":"x"}}`, id: "c6", code: "bad_args"},
		{frame: `{"type":"command","id":"c7","command":"deleteMessages","args":{"upTo":5}}`, id: "c7", code: "bad_args"},
		{frame: `{"type":"command","id":"c8","command":"putState","args":{}}`, id: "c8", code: "bad_args"},
		{frame: `{"type":"command","id":"c9","command":"unsubscribe","args":{"stream":"zz"}}`, id: "c9", code: "not_subscribed"},
		{frame: `{"type":"command","id":"c10","command":"getState","args":[1]}`, id: "c10", code: "bad_args"},
		{frame: `{"type":"publish","id":"big","data":"` + strings.Repeat("x", 40000) + `"}`, code: "payload_too_large"},
		{frame: `{"type":"publish","id":"bin","data":1}`, binary: true, code: "bad_frame"},
	}
	for _, tc := range cases {
		mt := websocket.TextMessage
		if tc.binary {
			mt = websocket.BinaryMessage
		}
		if err := c.C.WriteMessage(mt, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		e := c.Next("error")
		id := ""
		if e.ID != nil {
			id = *e.ID
		}
		if e.Code != tc.code || id != tc.id || e.Message == "" || !strings.Contains(e.Message, tc.msg) || strings.Contains(e.Message, "Go ") {
			t.Errorf("%.80s: got %q id %q (%s), want %q id %q (%s)", tc.frame, e.Code, id, e.Message, tc.code, tc.id, tc.msg)
		}
	}
	// Still usable.
	if seqs := c.Publish("ok", 1); seqs[0] != 1 {
		t.Fatal(seqs)
	}
	c.Messages(1, 1)
}

func TestStreamDeleteAndState(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	c := gwtest.DialStream(t, f, "/v1/stream/del?from=latest")
	c.Publish("a", 10)
	if r := c.Command("d1", "deleteMessages", map[string]any{"upTo": 5}); r.Type != "reply" || string(r.Result) != `{"firstSeq":6,"lastSeq":10}` {
		t.Fatalf("%+v %s", r, r.Result)
	}
	late := gwtest.DialStream(t, f, "/v1/stream/del")
	e := late.Next("error")
	if e.Code != "history_gone" || e.FirstSeq != 6 || e.Seq != 1 {
		t.Fatalf("%+v", e)
	}
	late.Messages(6, 5)
	// State and checkpoints.
	if r := c.Command("s0", "getState", nil); string(r.Result) != `{"state":null}` {
		t.Fatalf("%s", r.Result)
	}
	if r := c.Command("s1", "putState", map[string]any{"state": map[string]int{"sum": 45}, "checkpoint": 8}); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	if r := c.Command("s2", "getState", nil); string(r.Result) != `{"state":{"sum":45},"checkpoint":8}` {
		t.Fatalf("%s", r.Result)
	}
	if r := c.Command("s3", "getStreamInfo", nil); !strings.Contains(string(r.Result), `"firstSeq":9,"lastSeq":10`) {
		t.Fatalf("%s", r.Result)
	}
	// Numbering continues after deletes.
	if seqs := c.Publish("b", 1); seqs[0] != 11 {
		t.Fatal(seqs)
	}
}

func TestStreamMoreStreamsOnOneConnection(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	other := gwtest.DialStream(t, f, "/v1/stream/o/2?from=latest")
	other.Publish("o", 3)
	c := gwtest.DialStream(t, f, "/v1/stream/o/1")
	if r := c.Command("s", "subscribe", map[string]any{"stream": "o/2", "from": 2}); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	for want := uint64(2); want <= 3; want++ {
		m := c.Next("message")
		if m.Stream != "o/2" || m.Seq != want {
			t.Fatalf("%+v", m)
		}
	}
	c.Write(map[string]any{"type": "ack", "seq": 3, "stream": "o/2"})
	if r := c.Command("u", "unsubscribe", map[string]any{"stream": "o/2"}); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	other.Publish("p", 1)
	c.Publish("c", 1)
	m := c.Next("message")
	if m.Stream != "o/1" || m.Seq != 1 {
		t.Fatalf("after unsubscribe: %+v", m)
	}
}

func TestStreamHostRestartContinuesNumbering(t *testing.T) {
	s, h, f := gwtest.StartStreams(t, gateway.Options{})
	sub := gwtest.DialStream(t, f, "/v1/stream/restart")
	pub := gwtest.DialStream(t, f, "/v1/stream/restart?from=latest")
	pub.Publish("a", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	gwtest.StartStreamHost(t, s, "h2")
	if seqs := pub.Publish("b", 2); seqs[0] != 4 || seqs[1] != 5 {
		t.Fatalf("after restart: %v", seqs)
	}
	sub.Messages(1, 5)
}

func TestStreamAcrossGateways(t *testing.T) {
	s, _, f1 := gwtest.StartStreams(t, gateway.Options{})
	f2 := gwtest.StartGateway(t, s, gateway.Options{Streams: true, Routes: []gateway.Route{}})
	sub := gwtest.DialStream(t, f2, "/v1/stream/x/y")
	pub := gwtest.DialStream(t, f1, "/v1/stream/x/y?from=latest")
	pub.Publish("a", 5)
	sub.Messages(1, 5)
}

func TestStreamRetentionAndAuth(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{APIKeys: []string{"k"}, StreamRetention: []gateway.StreamRetention{{Pattern: "ret/>", MaxMsgs: 3}}})
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.URL, "http")+"/v1/stream/ret/a", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("no key: %v", err)
	}
	c := gwtest.DialStream(t, f, "/v1/stream/ret/a?token=k&from=latest")
	c.Publish("a", 5)
	if r := c.Command("i", "getStreamInfo", nil); !strings.Contains(string(r.Result), `"firstSeq":3,"lastSeq":5`) {
		t.Fatalf("%s", r.Result)
	}
}

// A subscriber reading history back from the ring takes it at the pace its connection
// writes (its window here is far larger than its queue): it is never closed as a slow
// consumer for it, and every message arrives in order.
func TestStreamReplayIsPacedByTheQueue(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{StreamQueueBytes: 32 << 10})
	pub := gwtest.DialStream(t, f, "/v1/stream/paced?from=latest&window=1")
	blob := strings.Repeat("x", 2<<10)
	for i := 0; i < 200; i++ {
		pub.Write(map[string]any{"type": "publish", "id": "p", "data": blob})
	}
	for i := 0; i < 200; i++ {
		pub.Next("published")
	}
	// 200 messages of 2 KiB: more than six times the queue, read from the ring.
	sub := gwtest.DialStream(t, f, "/v1/stream/paced?from=1&window=65536")
	sub.Messages(1, 200)
	if n := wsstream.SlowClosed(f.GW.ID()); n != 0 {
		t.Fatalf("%d connections closed as slow consumers", n)
	}
}
