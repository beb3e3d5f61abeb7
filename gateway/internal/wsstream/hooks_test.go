package wsstream_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/gateway/internal/wsstream"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/streams"
)

func lastSeq(t *testing.T, c *gwtest.StreamConn, stream string) string {
	t.Helper()
	r := c.Command("info-"+stream, "getStreamInfo", map[string]any{"stream": stream})
	if r.Type != "reply" {
		t.Fatalf("getStreamInfo: %s %s", r.Code, r.Message)
	}
	var info struct{ LastSeq uint64 }
	if err := json.Unmarshal(r.Result, &info); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(info.LastSeq)
}

func TestStreamHooksSubscribeRefused(t *testing.T) {
	l := gwtest.NewHookLog()
	_, _, f := gwtest.StartStreams(t, gateway.Options{APIKeys: []string{"k1", "k2"}, StreamHooks: gwtest.AuthHooks(l)})
	// Refused on connect: a 403 JSON error before the upgrade.
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.URL, "http")+"/v1/stream/secret/a?token=k1", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("connect to secret/a with k1: %v %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	var eb struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(body, &eb) != nil || eb.Error.Code != "forbidden" || !strings.Contains(eb.Error.Message, "secret/a needs k2") {
		t.Fatalf("403 body %s", body)
	}
	if got := l.SubKey("secret/a"); got != "k1" {
		t.Fatalf("hook saw key %q, want k1", got)
	}
	// Refused by a subscribe command: an error frame; the connection stays usable.
	c := gwtest.DialStream(t, f, "/v1/stream/open/a?token=k1&from=latest")
	r := c.Command("s1", "subscribe", map[string]any{"stream": "secret/b"})
	if r.Type != "error" || r.Code != "forbidden" || !strings.Contains(r.Message, "secret/b needs k2") {
		t.Fatalf("subscribe secret/b: %+v", r)
	}
	if r := c.Command("s2", "subscribe", map[string]any{"stream": "open/b"}); r.Type != "reply" {
		t.Fatalf("subscribe open/b: %+v", r)
	}
	// getState reads a stream: the same hook.
	if r := c.Command("g1", "getState", map[string]any{"stream": "secret/b"}); r.Type != "error" || r.Code != "forbidden" {
		t.Fatalf("getState secret/b: %+v", r)
	}
	// With k2, in the Authorization header this time, both work.
	hdr := http.Header{"Authorization": {"Bearer k2"}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.URL, "http")+"/v1/stream/secret/a", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c2 := &gwtest.StreamConn{T: t, C: ws}
	if got := l.SubKey("secret/a"); got != "k2" {
		t.Fatalf("hook saw key %q, want k2", got)
	}
	if r := c2.Command("s3", "subscribe", map[string]any{"stream": "secret/b"}); r.Type != "reply" {
		t.Fatalf("subscribe secret/b with k2: %+v", r)
	}
}

func TestStreamHooksPublishRefused(t *testing.T) {
	l := gwtest.NewHookLog()
	_, _, f := gwtest.StartStreams(t, gateway.Options{APIKeys: []string{"k1", "k2"}, StreamHooks: gwtest.AuthHooks(l)})
	c := gwtest.DialStream(t, f, "/v1/stream/pub/a?token=k1&from=latest")
	c.Write(map[string]any{"type": "publish", "id": "p1", "data": map[string]any{"x": "forbidden"}})
	r := c.Await(func(f gwtest.Frame) bool { return f.ID != nil && *f.ID == "p1" })
	if r.Type != "error" || r.Code != "forbidden" || !strings.Contains(r.Message, "no publishing that to pub/a") {
		t.Fatalf("refused publish: %+v", r)
	}
	if got := lastSeq(t, c, "pub/a"); got != "0" {
		t.Fatalf("lastSeq %s after a refused publish", got)
	}
	// Refused and allowed publishes in one batch: each answered, in order, and only the
	// allowed ones stored.
	for i := 0; i < 6; i++ {
		data := map[string]any{"n": i}
		if i%2 == 1 {
			data["x"] = "forbidden"
		}
		c.Write(map[string]any{"type": "publish", "id": fmt.Sprint("b", i), "data": data})
	}
	var seqs []uint64
	for i := 0; i < 6; i++ {
		id := fmt.Sprint("b", i)
		r := c.Await(func(f gwtest.Frame) bool { return f.ID != nil && *f.ID == id })
		switch {
		case i%2 == 1 && (r.Type != "error" || r.Code != "forbidden"):
			t.Fatalf("%s: %+v", id, r)
		case i%2 == 0 && r.Type != "published":
			t.Fatalf("%s: %+v", id, r)
		case i%2 == 0:
			seqs = append(seqs, r.Seq)
		}
	}
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("published seqs %v", seqs)
	}
	if got := lastSeq(t, c, "pub/a"); got != "3" {
		t.Fatalf("lastSeq %s", got)
	}
	// A connection to a read-only stream may read it but not publish or delete.
	ro := gwtest.DialStream(t, f, "/v1/stream/ro/a?token=k2")
	ro.Write(map[string]any{"type": "publish", "id": "p2", "data": 1})
	if r := ro.Await(func(f gwtest.Frame) bool { return f.ID != nil && *f.ID == "p2" }); r.Type != "error" || r.Code != "forbidden" {
		t.Fatalf("publish to ro/a: %+v", r)
	}
	if r := ro.Command("d1", "deleteMessages", map[string]any{"upTo": 1}); r.Type != "error" || r.Code != "forbidden" {
		t.Fatalf("deleteMessages on ro/a: %+v", r)
	}
	if got := lastSeq(t, ro, "ro/a"); got != "0" {
		t.Fatalf("ro/a lastSeq %s", got)
	}
	l.Lock()
	defer l.Unlock()
	if !l.Keys["k1"] || !l.Keys["k2"] || len(l.Keys) != 2 {
		t.Fatalf("hooks saw keys %v", l.Keys)
	}
	if l.Subs["pub:pub/a"] != "k1" || l.Subs["pub:ro/a"] != "k2" {
		t.Fatalf("publish hook saw %v", l.Subs)
	}
}

// waitLive waits until n subscribers of stream on f's gateway are at the feed's head.
func waitLive(t *testing.T, f *gwtest.Fixture, stream string, n int) {
	t.Helper()
	natstest.WaitFor(t, "live subscribers", 10*time.Second, func() bool {
		return wsstream.LiveSubscribers(f.GW.ID(), stream) >= n
	})
}

func TestStreamHooksTransform(t *testing.T) {
	var mu sync.Mutex
	calls := map[uint64]int{}
	hooks := streams.Hooks{Transform: func(stream string, seq uint64, data json.RawMessage) (json.RawMessage, bool) {
		mu.Lock()
		calls[seq]++
		mu.Unlock()
		var m struct{ N int }
		if err := json.Unmarshal(data, &m); err != nil {
			return data, true
		}
		if m.N%3 == 1 { // n = 1, 4: dropped
			return nil, false
		}
		return json.RawMessage(fmt.Sprintf(`{"n":%d,"stream":%q,"seq":%d}`, m.N, stream, seq)), true
	}}
	_, _, f := gwtest.StartStreams(t, gateway.Options{StreamHooks: hooks})
	a := gwtest.DialStream(t, f, "/v1/stream/tx/a")
	b := gwtest.DialStream(t, f, "/v1/stream/tx/a")
	pub := gwtest.DialStream(t, f, "/v1/stream/tx/a?from=latest")
	waitLive(t, f, "tx/a", 3)
	if got := pub.Publish("p", 6); fmt.Sprint(got) != "[1 2 3 4 5 6]" {
		t.Fatalf("seqs %v", got)
	}
	// Every subscriber, live or reading back, gets the kept messages, rewritten, and no
	// gap error for the dropped ones.
	check := func(name string, c *gwtest.StreamConn) {
		t.Helper()
		var got []string
		for len(got) < 4 {
			fr := c.Await(func(f gwtest.Frame) bool { return f.Type == "message" || f.Type == "error" && f.ID == nil })
			if fr.Type == "error" {
				t.Fatalf("%s: error frame %s %s", name, fr.Code, fr.Message)
			}
			got = append(got, fmt.Sprintf("%d:%s", fr.Seq, fr.Data))
		}
		want := `[1:{"n":0,"stream":"tx/a","seq":1} 3:{"n":2,"stream":"tx/a","seq":3} 4:{"n":3,"stream":"tx/a","seq":4} 6:{"n":5,"stream":"tx/a","seq":6}]`
		if fmt.Sprint(got) != want {
			t.Fatalf("%s got %v", name, got)
		}
	}
	check("a", a)
	check("b", b)
	check("pub", pub)
	// Transformed once per message for all live subscribers.
	mu.Lock()
	for seq := uint64(1); seq <= 6; seq++ {
		if calls[seq] != 1 {
			t.Errorf("seq %d transformed %d times", seq, calls[seq])
		}
	}
	mu.Unlock()
	// Acks past a dropped seq are fine; a late subscriber reads the stream back through
	// the same hook, and a dropped last message leaves no gap either.
	a.Write(map[string]any{"type": "ack", "seq": 6})
	late := gwtest.DialStream(t, f, "/v1/stream/tx/a")
	check("late", late)
	pub.Publish("q", 2) // n = 0 (kept, seq 7), n = 1 (dropped, seq 8)
	pub.Write(map[string]any{"type": "publish", "id": "last", "data": map[string]any{"n": 2}})
	for _, c := range []*gwtest.StreamConn{a, late} {
		fr := c.Await(func(f gwtest.Frame) bool { return f.Type == "message" && f.Seq > 6 || f.Type == "error" && f.ID == nil })
		if fr.Type != "message" || fr.Seq != 7 {
			t.Fatalf("after seq 6: %+v", fr)
		}
		fr = c.Await(func(f gwtest.Frame) bool { return f.Type == "message" || f.Type == "error" && f.ID == nil })
		if fr.Type != "message" || fr.Seq != 9 {
			t.Fatalf("after seq 7: %+v", fr)
		}
	}
	if r := a.Command("bad", "getServerInfo", nil); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
}

func TestStreamHooksCompat(t *testing.T) {
	l := gwtest.NewHookLog()
	hooks := gwtest.AuthHooks(l)
	hooks.Transform = func(_ string, _ uint64, data json.RawMessage) (json.RawMessage, bool) {
		if strings.Contains(string(data), "drop") {
			return nil, false
		}
		return data, true
	}
	_, _, f := gwtest.StartStreams(t, gateway.Options{APIKeys: []string{"k1", "k2"}, StreamHooks: hooks})
	c := gwtest.DialCompat(t, f, "/stream/secret/c?apiKey=k1")
	c.Send(`{"data":{"x":"forbidden"},"cMsgId":1,"clientId":7}`)
	r := c.Recv()
	gwtest.WantField(t, r, "cMsgId", "1")
	if !strings.Contains(string(r["error"]), `"code":"forbidden"`) || r["sequence"] != nil {
		t.Fatalf("refused publish: %s", gwtest.Dump(r))
	}
	c.Send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":2,"clientId":7}`)
	r = c.Recv()
	gwtest.WantField(t, r, "cMsgId", "2")
	if !strings.Contains(string(r["error"]), "secret/c needs k2") {
		t.Fatalf("refused subscribe: %s", gwtest.Dump(r))
	}
	if got := l.SubKey("secret/c"); got != "k1" {
		t.Fatalf("hook saw key %q", got)
	}
	// The connection stays usable; with k2 a subscriber gets the kept messages only.
	c.Send(`{"data":{"v":"drop"},"cMsgId":3,"clientId":7}`)
	gwtest.WantField(t, c.Recv(), "sequence", "100000000001")
	c.Send(`{"data":{"v":"keep"},"cMsgId":4,"clientId":7}`)
	gwtest.WantField(t, c.Recv(), "sequence", "100000000002")
	s := gwtest.DialCompat(t, f, "/stream/secret/c?apiKey=k2")
	s.Send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":1,"clientId":8}`)
	gwtest.WantField(t, s.Recv(), "sequence", "100000000002")
	p := s.Recv()
	gwtest.WantField(t, p, "sequence", "100000000002")
	gwtest.WantField(t, p, "data", `{"v":"keep"}`)
}
