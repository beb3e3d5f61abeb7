package kvwatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// mirror is what a caller builds from a watch: key -> value, with the calls counted.
type mirror struct {
	mu      sync.Mutex
	m       map[string]string
	seen    map[string]bool // keys put during the current initial pass
	begins  int
	syncs   int
	entries int
}

func (m *mirror) config(keys ...string) Config {
	m.m = map[string]string{}
	return Config{
		What: "test", Keys: keys,
		Begin: func() {
			m.mu.Lock()
			m.begins++
			m.seen = map[string]bool{}
			m.mu.Unlock()
		},
		Entry: func(e jetstream.KeyValueEntry) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.entries++
			if e.Operation() == jetstream.KeyValuePut {
				m.m[e.Key()] = string(e.Value())
				if m.seen != nil {
					m.seen[e.Key()] = true
				}
			} else {
				delete(m.m, e.Key())
			}
		},
		Synced: func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.syncs++
			for k := range m.m {
				if m.seen != nil && !m.seen[k] {
					delete(m.m, k)
				}
			}
			m.seen = nil
		},
	}
}

func (m *mirror) get(k string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}

func (m *mirror) counts() (begins, syncs, entries, size int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.begins, m.syncs, m.entries, len(m.m)
}

// closable hands out watchers the test can close under the loop, as a subscription
// closed by the client library would be.
type closable struct {
	jetstream.KeyValue
	mu   sync.Mutex
	last jetstream.KeyWatcher
	n    int
	gate chan struct{} // when set, an open waits for it to close
}

func (c *closable) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	w, err := c.KeyValue.WatchFiltered(ctx, keys, opts...)
	c.mu.Lock()
	c.last, c.n = w, c.n+1
	c.mu.Unlock()
	return w, err
}

// closeLast ends the current watch and holds the next open until the returned function
// is called.
func (c *closable) closeLast(t *testing.T) (reopen func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gate := make(chan struct{})
	c.gate = gate
	if err := c.last.Stop(); err != nil {
		t.Fatal(err)
	}
	return func() {
		c.mu.Lock()
		c.gate = nil
		c.mu.Unlock()
		close(gate)
	}
}

func (c *closable) opens() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	s := natstest.Server(t)
	js, err := jetstream.New(natstest.Conn(t, s))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "test", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestCurrentEntriesThenChangesAndReopen(t *testing.T) {
	kv := bucket(t)
	ctx := context.Background()
	for _, k := range []string{"a.1", "a.2", "b.1"} {
		if _, err := kv.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	ck := &closable{KeyValue: kv}
	var m mirror
	w, err := Start(ctx, ck, m.config("a.>"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.WaitSynced(sctx); err != nil {
		t.Fatal(err)
	}
	if b, s, _, n := m.counts(); b != 1 || s != 1 || n != 2 {
		t.Fatalf("after the first sync: %d begins, %d syncs, %d keys; want 1, 1, 2", b, s, n)
	}
	if _, ok := m.get("b.1"); ok {
		t.Fatal("a key outside the filter was delivered")
	}
	if _, err := kv.Put(ctx, "a.3", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "a.1"); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "the change and the delete", 5*time.Second, func() bool {
		_, gone := m.get("a.1")
		v, _ := m.get("a.3")
		return !gone && v == "three"
	})

	// The watch ends under the loop; while none runs, a.2 goes away. The reopened watch
	// delivers the current entries again and the mirror drops a.2.
	reopen := ck.closeLast(t)
	if err := kv.Purge(ctx, "a.2"); err != nil {
		t.Fatal(err)
	}
	reopen()
	natstest.WaitFor(t, "the watch to reopen and sync again", 10*time.Second, func() bool {
		b, s, _, _ := m.counts()
		return ck.opens() == 2 && b == 2 && s == 2
	})
	if _, ok := m.get("a.2"); ok {
		t.Fatal("a.2 vanished while no watch ran but is still mirrored")
	}
	if v, _ := m.get("a.3"); v != "three" {
		t.Fatalf("a.3 = %q after the reopen", v)
	}
}

func TestUpdatesOnlyResumesWithoutAGap(t *testing.T) {
	kv := bucket(t)
	ctx := context.Background()
	if _, err := kv.Put(ctx, "old", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ck := &closable{KeyValue: kv}
	var m mirror
	cfg := m.config()
	cfg.UpdatesOnly = true
	w, err := Start(ctx, ck, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := w.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k1", []byte("1")); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "k1", 5*time.Second, func() bool { _, ok := m.get("k1"); return ok })
	reopen := ck.closeLast(t)
	// Written while no watch runs: the resumed watch must still deliver it.
	if _, err := kv.Put(ctx, "k2", []byte("2")); err != nil {
		t.Fatal(err)
	}
	reopen()
	natstest.WaitFor(t, "k2 after the reopen", 10*time.Second, func() bool { _, ok := m.get("k2"); return ok })
	if _, ok := m.get("old"); ok {
		t.Fatal("an UpdatesOnly watch delivered an entry older than itself")
	}
	if _, _, e, _ := m.counts(); e != 2 {
		t.Fatalf("%d entries delivered, want 2 (k1 once, k2 once)", e)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	s := natstest.Server(t)
	js, err := jetstream.New(natstest.Conn(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "later"})
	if err != nil {
		t.Fatal(err)
	}
	var m mirror
	done := make(chan struct{})
	cfg := m.config() // before the goroutine: config sets the mirror's map, which get reads
	go func() { Run(ctx, kv, cfg); close(done) }()
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "k", 5*time.Second, func() bool { _, ok := m.get("k"); return ok })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestSnapshot(t *testing.T) {
	kv := bucket(t)
	ctx := context.Background()
	for _, k := range []string{"a.1", "a.2", "b.1"} {
		if _, err := kv.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "a.2"); err != nil {
		t.Fatal(err)
	}
	es, err := Snapshot(ctx, kv, "a.>")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Key() != "a.1" {
		t.Fatalf("snapshot of a.>: %v, want only a.1", es)
	}
	empty, err := Snapshot(ctx, kv, "c.>")
	if err != nil || len(empty) != 0 {
		t.Fatalf("snapshot of nothing: %v %v", empty, err)
	}
}
