package gateway

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
	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats-server/v2/server"
)

func startStreamHost(t *testing.T, s *server.Server, id string) *runtime.Host {
	t.Helper()
	return hosttest.Start(t, natstest.Conn(t, s), runtime.Options{ID: id, Classes: []objects.Class{stream.Class}})
}

func startStreams(t *testing.T, opts Options) (*server.Server, *runtime.Host, *fixture) {
	t.Helper()
	s := natstest.Server(t)
	h := startStreamHost(t, s, "h1")
	opts.Streams = true
	opts.Routes = []Route{}
	return s, h, startGateway(t, s, opts)
}

// sconn is a test client of /v1/stream.
type sconn struct {
	t   *testing.T
	c   *websocket.Conn
	buf []sframe // read but not consumed yet
}

func sdial(t *testing.T, f *fixture, path string) *sconn {
	t.Helper()
	return &sconn{t: t, c: dial(t, f, path)}
}

type sframe struct {
	Type     string          `json:"type"`
	ID       *string         `json:"id"`
	Seq      uint64          `json:"seq"`
	Stream   string          `json:"stream"`
	Time     string          `json:"time"`
	Data     json.RawMessage `json:"data"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	FirstSeq uint64          `json:"firstSeq"`
	Result   json.RawMessage `json:"result"`
}

func (c *sconn) write(v any) {
	c.t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	if err := c.c.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *sconn) read() sframe {
	c.t.Helper()
	if len(c.buf) > 0 {
		f := c.buf[0]
		c.buf = c.buf[1:]
		return f
	}
	return c.readRaw()
}

// await returns the first frame, buffered or new, that match accepts; the others stay
// buffered in order.
func (c *sconn) await(match func(sframe) bool) sframe {
	c.t.Helper()
	for i, f := range c.buf {
		if match(f) {
			c.buf = append(c.buf[:i:i], c.buf[i+1:]...)
			return f
		}
	}
	for i := 0; i < 100000; i++ {
		f := c.readRaw()
		if match(f) {
			return f
		}
		c.buf = append(c.buf, f)
	}
	c.t.Fatal("no matching frame")
	return sframe{}
}

func (c *sconn) readRaw() sframe {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f sframe
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// next reads until a frame of type typ, failing on unexpected message frames.
func (c *sconn) next(typ string) sframe {
	c.t.Helper()
	return c.await(func(f sframe) bool { return f.Type == typ })
}

// messages reads n message frames and checks their seqs run from first on.
func (c *sconn) messages(first uint64, n int) []sframe {
	c.t.Helper()
	var out []sframe
	for len(out) < n {
		f := c.read()
		if f.Type != "message" {
			continue
		}
		if want := first + uint64(len(out)); f.Seq != want {
			c.t.Fatalf("message seq %d, want %d", f.Seq, want)
		}
		out = append(out, f)
	}
	return out
}

// publish publishes n messages {"n":i} and returns their seqs in order.
func (c *sconn) publish(prefix string, n int) []uint64 {
	c.t.Helper()
	for i := 0; i < n; i++ {
		c.write(map[string]any{"type": "publish", "id": fmt.Sprintf("%s%d", prefix, i), "data": map[string]any{"n": i, "p": prefix}})
	}
	var seqs []uint64
	for len(seqs) < n {
		f := c.await(func(f sframe) bool { return f.Type == "published" || f.Type == "error" && f.ID != nil })
		if f.Type == "error" {
			c.t.Fatalf("publish: %s %s", f.Code, f.Message)
		}
		if want := fmt.Sprintf("%s%d", prefix, len(seqs)); f.ID == nil || *f.ID != want {
			c.t.Fatalf("published %v, want id %s", f.ID, want)
		}
		seqs = append(seqs, f.Seq)
	}
	return seqs
}

func (c *sconn) command(id, name string, args any) sframe {
	c.t.Helper()
	c.write(map[string]any{"type": "command", "id": id, "command": name, "args": args})
	return c.await(func(f sframe) bool { return f.ID != nil && *f.ID == id && (f.Type == "reply" || f.Type == "error") })
}

func TestStreamPublishSubscribeOrder(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	sub := sdial(t, f, "/v1/stream/chat/room1")
	pub := sdial(t, f, "/v1/stream/chat/room1?from=latest")
	seqs := pub.publish("a", 50)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v", seqs)
		}
	}
	got := sub.messages(1, 50)
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
	pub.messages(1, 50)
	r := sub.command("i1", "getStreamInfo", nil)
	if r.Type != "reply" || !strings.Contains(string(r.Result), `"firstSeq":1,"lastSeq":50`) || !strings.Contains(string(r.Result), `"subscribers":2`) {
		t.Fatalf("getStreamInfo: %+v %s", r, r.Result)
	}
	r = sub.command("i2", "getServerInfo", nil)
	if r.Type != "reply" || !strings.Contains(string(r.Result), `"node"`) {
		t.Fatalf("getServerInfo: %s", r.Result)
	}
}

func TestStreamReplayBoundaries(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	pub := sdial(t, f, "/v1/stream/r?from=latest")
	pub.publish("a", 10)
	all := sdial(t, f, "/v1/stream/r")
	mid := sdial(t, f, "/v1/stream/r?from=5")
	latest := sdial(t, f, "/v1/stream/r?from=latest")
	// Make sure the latest subscriber is registered before publishing more.
	latest.command("c", "getStreamInfo", nil)
	all.messages(1, 10)
	mid.messages(5, 6)
	pub.publish("b", 3)
	all.messages(11, 3)
	mid.messages(11, 3)
	latest.messages(11, 3)
}

func TestStreamReplayHandsOverToLiveUnderLoad(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	pub := sdial(t, f, "/v1/stream/h?from=latest")
	pub.publish("a", 300)
	// Subscribers join while publishing continues: none may miss or repeat a seq.
	done := make(chan []uint64)
	go func() { done <- pub.publishAsync("b", 300) }()
	subs := []*sconn{sdial(t, f, "/v1/stream/h"), sdial(t, f, "/v1/stream/h?window=7")}
	<-done
	for _, s := range subs {
		for seq := uint64(1); seq <= 600; seq++ {
			s.messages(seq, 1)
			s.write(map[string]any{"type": "ack", "seq": seq})
		}
	}
}

// publishAsync publishes without reading (the read side is the caller's concern later).
func (c *sconn) publishAsync(prefix string, n int) []uint64 {
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(map[string]any{"type": "publish", "id": fmt.Sprintf("%s%d", prefix, i), "data": i})
		if err := c.c.WriteMessage(websocket.TextMessage, b); err != nil {
			return nil
		}
	}
	return nil
}

func TestStreamWindowAndAcks(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	pub := sdial(t, f, "/v1/stream/w?from=latest")
	pub.publish("a", 20)
	sub := sdial(t, f, "/v1/stream/w?window=5")
	sub.messages(1, 5)
	// Nothing more until an ack opens the window.
	r := sub.command("x", "getServerInfo", nil)
	if r.Type != "reply" {
		t.Fatal(r)
	}
	sub.write(map[string]any{"type": "ack", "seq": 3})
	sub.messages(6, 3)
	sub.write(map[string]any{"type": "ack", "seq": 8})
	sub.messages(9, 5)
	sub.write(map[string]any{"type": "ack", "seq": 99})
	if e := sub.next("error"); e.Code != "bad_ack" {
		t.Fatalf("%+v", e)
	}
}

func TestStreamDurableResume(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	pub := sdial(t, f, "/v1/stream/d?from=latest")
	pub.publish("a", 8)
	c1 := sdial(t, f, "/v1/stream/d?client=worker-1")
	c1.messages(1, 8)
	c1.write(map[string]any{"type": "ack", "seq": 5})
	natstest.WaitFor(t, "the ack to be stored", 10*time.Second, func() bool {
		a, err := f.gw.sc.ClientAck(context.Background(), "d", "worker-1")
		return err == nil && a.Seq == 5
	})
	_ = c1.c.Close()
	c2 := sdial(t, f, "/v1/stream/d?client=worker-1")
	c2.messages(6, 3)
	// An explicit from wins over the stored position.
	c3 := sdial(t, f, "/v1/stream/d?client=worker-1&from=2")
	c3.messages(2, 7)
}

func TestStreamSlowConsumerIsClosed(t *testing.T) {
	_, _, f := startStreams(t, Options{StreamQueueBytes: 256 << 10})
	slow := sdial(t, f, "/v1/stream/s?window=65536")
	fast := sdial(t, f, "/v1/stream/s?window=65536")
	// The publisher takes one delivery and never acks: it only sees its "published".
	pub := sdial(t, f, "/v1/stream/s?window=1")
	// The fast client reads all the time, checking order.
	var fastLast atomic.Uint64
	fastErr := make(chan error, 1)
	go func() {
		for {
			_ = fast.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, b, err := fast.c.ReadMessage()
			if err != nil {
				fastErr <- err
				return
			}
			var fr sframe
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
	for round := 0; f.gw.conns.SlowClosed() == 0; round++ {
		if round > 2000 {
			t.Fatal("the slow consumer was never closed")
		}
		for i := 0; i < 32; i++ {
			pub.write(map[string]any{"type": "publish", "id": "p", "data": blob})
		}
		for i := 0; i < 32; i++ {
			pub.next("published")
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
	_ = slow.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var last uint64
	for {
		_, b, err := slow.c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != CloseSlowConsumer {
				t.Fatalf("slow client: %v, want close %d", err, CloseSlowConsumer)
			}
			break
		}
		var fr sframe
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
	pub.publish("z", 1)
	natstest.WaitFor(t, "the fast client to get the last one", 20*time.Second, func() bool { return fastLast.Load() == uint64(published+1) })
}

func TestStreamBadFrames(t *testing.T) {
	_, _, f := startStreams(t, Options{MaxMessage: 32 << 10})
	c := sdial(t, f, "/v1/stream/b")
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
		if err := c.c.WriteMessage(mt, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		e := c.next("error")
		id := ""
		if e.ID != nil {
			id = *e.ID
		}
		if e.Code != tc.code || id != tc.id || e.Message == "" || !strings.Contains(e.Message, tc.msg) || strings.Contains(e.Message, "Go ") {
			t.Errorf("%.80s: got %q id %q (%s), want %q id %q (%s)", tc.frame, e.Code, id, e.Message, tc.code, tc.id, tc.msg)
		}
	}
	// Still usable.
	if seqs := c.publish("ok", 1); seqs[0] != 1 {
		t.Fatal(seqs)
	}
	c.messages(1, 1)
}

func TestStreamDeleteAndState(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	c := sdial(t, f, "/v1/stream/del?from=latest")
	c.publish("a", 10)
	if r := c.command("d1", "deleteMessages", map[string]any{"upTo": 5}); r.Type != "reply" || string(r.Result) != `{"firstSeq":6,"lastSeq":10}` {
		t.Fatalf("%+v %s", r, r.Result)
	}
	late := sdial(t, f, "/v1/stream/del")
	e := late.next("error")
	if e.Code != "history_gone" || e.FirstSeq != 6 || e.Seq != 1 {
		t.Fatalf("%+v", e)
	}
	late.messages(6, 5)
	// State and checkpoints.
	if r := c.command("s0", "getState", nil); string(r.Result) != `{"state":null}` {
		t.Fatalf("%s", r.Result)
	}
	if r := c.command("s1", "putState", map[string]any{"state": map[string]int{"sum": 45}, "checkpoint": 8}); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	if r := c.command("s2", "getState", nil); string(r.Result) != `{"state":{"sum":45},"checkpoint":8}` {
		t.Fatalf("%s", r.Result)
	}
	if r := c.command("s3", "getStreamInfo", nil); !strings.Contains(string(r.Result), `"firstSeq":9,"lastSeq":10`) {
		t.Fatalf("%s", r.Result)
	}
	// Numbering continues after deletes.
	if seqs := c.publish("b", 1); seqs[0] != 11 {
		t.Fatal(seqs)
	}
}

func TestStreamMoreStreamsOnOneConnection(t *testing.T) {
	_, _, f := startStreams(t, Options{})
	other := sdial(t, f, "/v1/stream/o/2?from=latest")
	other.publish("o", 3)
	c := sdial(t, f, "/v1/stream/o/1")
	if r := c.command("s", "subscribe", map[string]any{"stream": "o/2", "from": 2}); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	for want := uint64(2); want <= 3; want++ {
		m := c.next("message")
		if m.Stream != "o/2" || m.Seq != want {
			t.Fatalf("%+v", m)
		}
	}
	c.write(map[string]any{"type": "ack", "seq": 3, "stream": "o/2"})
	if r := c.command("u", "unsubscribe", map[string]any{"stream": "o/2"}); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
	other.publish("p", 1)
	c.publish("c", 1)
	m := c.next("message")
	if m.Stream != "o/1" || m.Seq != 1 {
		t.Fatalf("after unsubscribe: %+v", m)
	}
}

func TestStreamHostRestartContinuesNumbering(t *testing.T) {
	s, h, f := startStreams(t, Options{})
	sub := sdial(t, f, "/v1/stream/restart")
	pub := sdial(t, f, "/v1/stream/restart?from=latest")
	pub.publish("a", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	startStreamHost(t, s, "h2")
	if seqs := pub.publish("b", 2); seqs[0] != 4 || seqs[1] != 5 {
		t.Fatalf("after restart: %v", seqs)
	}
	sub.messages(1, 5)
}

func TestStreamAcrossGateways(t *testing.T) {
	s, _, f1 := startStreams(t, Options{})
	f2 := startGateway(t, s, Options{Streams: true, Routes: []Route{}})
	sub := sdial(t, f2, "/v1/stream/x/y")
	pub := sdial(t, f1, "/v1/stream/x/y?from=latest")
	pub.publish("a", 5)
	sub.messages(1, 5)
}

func TestStreamRetentionAndAuth(t *testing.T) {
	_, _, f := startStreams(t, Options{APIKeys: []string{"k"}, StreamRetention: []StreamRetention{{Pattern: "ret/>", MaxMsgs: 3}}})
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http")+"/v1/stream/ret/a", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("no key: %v", err)
	}
	c := sdial(t, f, "/v1/stream/ret/a?token=k&from=latest")
	c.publish("a", 5)
	if r := c.command("i", "getStreamInfo", nil); !strings.Contains(string(r.Result), `"firstSeq":3,"lastSeq":5`) {
		t.Fatalf("%s", r.Result)
	}
	for _, tc := range []struct {
		p, n string
		ok   bool
	}{{"a/*", "a/b", true}, {"a/*", "a/b/c", false}, {"a/>", "a/b/c", true}, {"a/>", "a", false}, {"a", "a", true}, {"*/b", "x/b", true}} {
		if matchPattern(tc.p, tc.n) != tc.ok {
			t.Errorf("%s %s", tc.p, tc.n)
		}
	}
}

// A subscriber reading history back from the ring takes it at the pace its connection
// writes (its window here is far larger than its queue): it is never closed as a slow
// consumer for it, and every message arrives in order.
func TestStreamReplayIsPacedByTheQueue(t *testing.T) {
	_, _, f := startStreams(t, Options{StreamQueueBytes: 32 << 10})
	pub := sdial(t, f, "/v1/stream/paced?from=latest&window=1")
	blob := strings.Repeat("x", 2<<10)
	for i := 0; i < 200; i++ {
		pub.write(map[string]any{"type": "publish", "id": "p", "data": blob})
	}
	for i := 0; i < 200; i++ {
		pub.next("published")
	}
	// 200 messages of 2 KiB: more than six times the queue, read from the ring.
	sub := sdial(t, f, "/v1/stream/paced?from=1&window=65536")
	sub.messages(1, 200)
	if n := f.gw.conns.SlowClosed(); n != 0 {
		t.Fatalf("%d connections closed as slow consumers", n)
	}
}
