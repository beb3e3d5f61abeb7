package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway/internal/feed"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/streams"
)

// hookLog records what the authorization hooks were asked.
type hookLog struct {
	mu   sync.Mutex
	keys map[string]bool   // keys seen
	subs map[string]string // stream -> key of the last subscribe asked
}

func (l *hookLog) saw(c streams.Conn, stream string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys[c.Key] = true
	l.subs[stream] = c.Key
}

func (l *hookLog) subKey(stream string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subs[stream]
}

// authHooks: streams under secret/ are for key k2 only; a publish whose data holds
// "forbidden", and any publish to ro/..., is refused.
func authHooks(l *hookLog) streams.Hooks {
	return streams.Hooks{
		AuthorizeSubscribe: func(_ context.Context, c streams.Conn, stream string) error {
			l.saw(c, stream)
			if strings.HasPrefix(stream, "secret/") && c.Key != "k2" {
				return fmt.Errorf("%w: %s needs k2", streams.ErrForbidden, stream)
			}
			return nil
		},
		AuthorizePublish: func(_ context.Context, c streams.Conn, stream string, data json.RawMessage) error {
			l.saw(c, "pub:"+stream)
			if strings.HasPrefix(stream, "ro/") || strings.Contains(string(data), "forbidden") {
				return fmt.Errorf("%w: no publishing that to %s", streams.ErrForbidden, stream)
			}
			return nil
		},
	}
}

func lastSeq(t *testing.T, c *sconn, stream string) string {
	t.Helper()
	r := c.command("info-"+stream, "getStreamInfo", map[string]any{"stream": stream})
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
	l := &hookLog{keys: map[string]bool{}, subs: map[string]string{}}
	_, _, f := startStreams(t, Options{APIKeys: []string{"k1", "k2"}, StreamHooks: authHooks(l)})
	// Refused on connect: a 403 JSON error before the upgrade.
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http")+"/v1/stream/secret/a?token=k1", nil)
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
	if got := l.subKey("secret/a"); got != "k1" {
		t.Fatalf("hook saw key %q, want k1", got)
	}
	// Refused by a subscribe command: an error frame; the connection stays usable.
	c := sdial(t, f, "/v1/stream/open/a?token=k1&from=latest")
	r := c.command("s1", "subscribe", map[string]any{"stream": "secret/b"})
	if r.Type != "error" || r.Code != "forbidden" || !strings.Contains(r.Message, "secret/b needs k2") {
		t.Fatalf("subscribe secret/b: %+v", r)
	}
	if r := c.command("s2", "subscribe", map[string]any{"stream": "open/b"}); r.Type != "reply" {
		t.Fatalf("subscribe open/b: %+v", r)
	}
	// getState reads a stream: the same hook.
	if r := c.command("g1", "getState", map[string]any{"stream": "secret/b"}); r.Type != "error" || r.Code != "forbidden" {
		t.Fatalf("getState secret/b: %+v", r)
	}
	// With k2, in the Authorization header this time, both work.
	hdr := http.Header{"Authorization": {"Bearer k2"}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http")+"/v1/stream/secret/a", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c2 := &sconn{t: t, c: ws}
	if got := l.subKey("secret/a"); got != "k2" {
		t.Fatalf("hook saw key %q, want k2", got)
	}
	if r := c2.command("s3", "subscribe", map[string]any{"stream": "secret/b"}); r.Type != "reply" {
		t.Fatalf("subscribe secret/b with k2: %+v", r)
	}
}

func TestStreamHooksPublishRefused(t *testing.T) {
	l := &hookLog{keys: map[string]bool{}, subs: map[string]string{}}
	_, _, f := startStreams(t, Options{APIKeys: []string{"k1", "k2"}, StreamHooks: authHooks(l)})
	c := sdial(t, f, "/v1/stream/pub/a?token=k1&from=latest")
	c.write(map[string]any{"type": "publish", "id": "p1", "data": map[string]any{"x": "forbidden"}})
	r := c.await(func(f sframe) bool { return f.ID != nil && *f.ID == "p1" })
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
		c.write(map[string]any{"type": "publish", "id": fmt.Sprint("b", i), "data": data})
	}
	var seqs []uint64
	for i := 0; i < 6; i++ {
		id := fmt.Sprint("b", i)
		r := c.await(func(f sframe) bool { return f.ID != nil && *f.ID == id })
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
	ro := sdial(t, f, "/v1/stream/ro/a?token=k2")
	ro.write(map[string]any{"type": "publish", "id": "p2", "data": 1})
	if r := ro.await(func(f sframe) bool { return f.ID != nil && *f.ID == "p2" }); r.Type != "error" || r.Code != "forbidden" {
		t.Fatalf("publish to ro/a: %+v", r)
	}
	if r := ro.command("d1", "deleteMessages", map[string]any{"upTo": 1}); r.Type != "error" || r.Code != "forbidden" {
		t.Fatalf("deleteMessages on ro/a: %+v", r)
	}
	if got := lastSeq(t, ro, "ro/a"); got != "0" {
		t.Fatalf("ro/a lastSeq %s", got)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.keys["k1"] || !l.keys["k2"] || len(l.keys) != 2 {
		t.Fatalf("hooks saw keys %v", l.keys)
	}
	if l.subs["pub:pub/a"] != "k1" || l.subs["pub:ro/a"] != "k2" {
		t.Fatalf("publish hook saw %v", l.subs)
	}
}

// waitLive waits until n subscribers of stream on f's gateway are at the feed's head.
func waitLive(t *testing.T, f *fixture, stream string, n int) {
	t.Helper()
	natstest.WaitFor(t, "live subscribers", 10*time.Second, func() bool {
		fd := f.gw.streams.hub().Running(stream)
		if fd == nil {
			return false
		}
		live := 0
		fd.Each(func(l feed.Listener) {
			if s, ok := l.(*streamSub); ok && s.position() == fd.Last()+1 {
				live++
			}
		})
		return live >= n
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
	_, _, f := startStreams(t, Options{StreamHooks: hooks})
	a := sdial(t, f, "/v1/stream/tx/a")
	b := sdial(t, f, "/v1/stream/tx/a")
	pub := sdial(t, f, "/v1/stream/tx/a?from=latest")
	waitLive(t, f, "tx/a", 3)
	if got := pub.publish("p", 6); fmt.Sprint(got) != "[1 2 3 4 5 6]" {
		t.Fatalf("seqs %v", got)
	}
	// Every subscriber, live or reading back, gets the kept messages, rewritten, and no
	// gap error for the dropped ones.
	check := func(name string, c *sconn) {
		t.Helper()
		var got []string
		for len(got) < 4 {
			fr := c.await(func(f sframe) bool { return f.Type == "message" || f.Type == "error" && f.ID == nil })
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
	a.write(map[string]any{"type": "ack", "seq": 6})
	late := sdial(t, f, "/v1/stream/tx/a")
	check("late", late)
	pub.publish("q", 2) // n = 0 (kept, seq 7), n = 1 (dropped, seq 8)
	pub.write(map[string]any{"type": "publish", "id": "last", "data": map[string]any{"n": 2}})
	for _, c := range []*sconn{a, late} {
		fr := c.await(func(f sframe) bool { return f.Type == "message" && f.Seq > 6 || f.Type == "error" && f.ID == nil })
		if fr.Type != "message" || fr.Seq != 7 {
			t.Fatalf("after seq 6: %+v", fr)
		}
		fr = c.await(func(f sframe) bool { return f.Type == "message" || f.Type == "error" && f.ID == nil })
		if fr.Type != "message" || fr.Seq != 9 {
			t.Fatalf("after seq 7: %+v", fr)
		}
	}
	if r := a.command("bad", "getServerInfo", nil); r.Type != "reply" {
		t.Fatalf("%+v", r)
	}
}

func TestStreamHooksCompat(t *testing.T) {
	l := &hookLog{keys: map[string]bool{}, subs: map[string]string{}}
	hooks := authHooks(l)
	hooks.Transform = func(_ string, _ uint64, data json.RawMessage) (json.RawMessage, bool) {
		if strings.Contains(string(data), "drop") {
			return nil, false
		}
		return data, true
	}
	_, _, f := startStreams(t, Options{APIKeys: []string{"k1", "k2"}, StreamHooks: hooks})
	c := dsdial(t, f, "/stream/secret/c?apiKey=k1")
	c.send(`{"data":{"x":"forbidden"},"cMsgId":1,"clientId":7}`)
	r := c.recv()
	wantField(t, r, "cMsgId", "1")
	if !strings.Contains(string(r["error"]), `"code":"forbidden"`) || r["sequence"] != nil {
		t.Fatalf("refused publish: %s", dump(r))
	}
	c.send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":2,"clientId":7}`)
	r = c.recv()
	wantField(t, r, "cMsgId", "2")
	if !strings.Contains(string(r["error"]), "secret/c needs k2") {
		t.Fatalf("refused subscribe: %s", dump(r))
	}
	if got := l.subKey("secret/c"); got != "k1" {
		t.Fatalf("hook saw key %q", got)
	}
	// The connection stays usable; with k2 a subscriber gets the kept messages only.
	c.send(`{"data":{"v":"drop"},"cMsgId":3,"clientId":7}`)
	wantField(t, c.recv(), "sequence", "100000000001")
	c.send(`{"data":{"v":"keep"},"cMsgId":4,"clientId":7}`)
	wantField(t, c.recv(), "sequence", "100000000002")
	s := dsdial(t, f, "/stream/secret/c?apiKey=k2")
	s.send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":1,"clientId":8}`)
	wantField(t, s.recv(), "sequence", "100000000002")
	p := s.recv()
	wantField(t, p, "sequence", "100000000002")
	wantField(t, p, "data", `{"v":"keep"}`)
}
