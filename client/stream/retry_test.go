package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dropProxy relays WebSockets to the gateway at upstream (ws://host/v1/stream/) and, the
// first drops times a "published" frame comes back, closes both connections instead of
// relaying it: the message is stored, and its answer is lost.
func dropProxy(t *testing.T, upstream string, drops int32) (base string, dropped *atomic.Int32) {
	t.Helper()
	left := &atomic.Int32{}
	left.Store(drops)
	dropped = &atomic.Int32{}
	up := strings.TrimSuffix(upstream, "/v1/stream/")
	var up1 websocket.Upgrader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		server, _, err := websocket.DefaultDialer.Dial(up+r.URL.RequestURI(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		client, err := up1.Upgrade(w, r, nil)
		if err != nil {
			server.Close()
			return
		}
		var once sync.Once
		closeBoth := func() { once.Do(func() { client.Close(); server.Close() }) }
		go func() {
			defer closeBoth()
			for {
				mt, b, err := client.ReadMessage()
				if err != nil || server.WriteMessage(mt, b) != nil {
					return
				}
			}
		}()
		defer closeBoth()
		for {
			mt, b, err := server.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(b, []byte(`"type":"published"`)) && left.Add(-1) >= 0 {
				dropped.Add(1)
				return // stored, and the answer never arrives
			}
			if client.WriteMessage(mt, b) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream/", dropped
}

// TestPublishRetriedOnceStored: publishes whose "published" answers are lost (the
// connection dies right after the stream stored them) are sent again after the reconnect
// and stored exactly once, each answered with the seq it got the first time.
func TestPublishRetriedOnceStored(t *testing.T) {
	gw := setup(t)
	base, dropped := dropProxy(t, gw, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := Dial(ctx, base+"r/1", Options{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if seq, err := pub.Publish(ctx, "first"); err != nil || seq != 1 {
		t.Fatalf("first publish: %d %v", seq, err)
	}
	// Many in flight at once, across two more lost answers.
	const n = 40
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			seq, err := pub.Publish(ctx, i)
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
			seqs[i] = seq
		})
	}
	wg.Wait()
	if dropped.Load() != 3 {
		t.Fatalf("%d answers dropped, want 3", dropped.Load())
	}
	// Read the stream back directly: every message once, at the seq its publish returned.
	got := map[uint64]json.RawMessage{}
	var mu sync.Mutex
	sub, err := Dial(ctx, gw+"r/1", Options{From: 1, Handler: func(m Message) {
		mu.Lock()
		got[m.Seq] = m.Data
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		l := len(got)
		mu.Unlock()
		if l >= n+1 || time.Now().After(deadline) {
			break
		}
	}
	info, err := sub.Command(ctx, "getStreamInfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	var si struct{ LastSeq uint64 }
	_ = json.Unmarshal(info, &si)
	mu.Lock()
	defer mu.Unlock()
	if si.LastSeq != n+1 || len(got) != n+1 {
		t.Fatalf("the stream holds %d messages (lastSeq %d), want %d", len(got), si.LastSeq, n+1)
	}
	if string(got[1]) != `"first"` {
		t.Errorf("seq 1 is %s", got[1])
	}
	for i, seq := range seqs {
		if string(got[seq]) != strings.TrimSpace(string(mustJSON(i))) {
			t.Errorf("publish %d returned seq %d, which holds %s", i, seq, got[seq])
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
