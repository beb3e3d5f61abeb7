package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

func pub(id string, epoch, seq uint64) string {
	return fmt.Sprintf(`{"id":%q,"data":{"n":%q},"producer":{"id":"p1","epoch":%d,"seq":%d}}`, id, id, epoch, seq)
}

// TestProducerPublish: a producer's publish is stored once however often it is retried,
// and a retry is answered with the original seq, across a move of the object to another
// host too; gaps, stale epochs and unknown producers store nothing and say why.
func TestProducerPublish(t *testing.T) {
	s := natstest.Server(t)
	host := hosttest.Start(t, natstest.Conn(t, s), runtime.Options{ID: "a", Classes: []objects.Class{stream.Class}})
	nc := natstest.Conn(t, s)
	steps := []struct{ body, want string }{
		{`[{"id":"x","data":0}]`, `200 [{"id":"x","seq":1}]`},
		{"[" + pub("a", 0, 0) + "," + pub("b", 0, 1) + "]", `200 [{"id":"a","seq":2},{"id":"b","seq":3}]`},
		// A retry of both, and the next one: the first two are not stored again.
		{"[" + pub("a", 0, 0) + "," + pub("b", 0, 1) + "," + pub("c", 0, 2) + "]",
			`200 [{"id":"a","seq":2,"duplicate":true},{"id":"b","seq":3,"duplicate":true},{"id":"c","seq":4}]`},
		{"[" + pub("e", 0, 5) + "]", `200 [{"id":"e","code":"producer_seq_gap","message":"producer sequence gap: seq 3 was not stored","expectedSeq":3,"receivedSeq":5}]`},
		{"[" + pub("f", 1, 3) + "]", `200 [{"id":"f","code":"bad_producer","message":"a new epoch starts at seq 0"}]`},
		{"[" + pub("g", 1, 0) + "]", `200 [{"id":"g","seq":5}]`},
		{"[" + pub("h", 0, 3) + "]", `200 [{"id":"h","code":"stale_producer_epoch","message":"stale producer epoch: a later epoch of this producer wrote already","producerEpoch":1}]`},
		{`[{"id":"i","data":1,"producer":{"id":"p2","epoch":0,"seq":7}}]`, `200 [{"id":"i","code":"producer_unknown","message":"the stream keeps no state for this producer: a new producer, or a new epoch, starts at seq 0","expectedSeq":0,"receivedSeq":7}]`},
		{`[{"id":"j","data":1,"producer":{"id":"","epoch":0,"seq":0}}]`, `200 [{"id":"j","code":"bad_producer","message":"producer id must be 1 to 256 bytes"}]`},
		{`[{"id":"k","data":1,"producer":{"id":"p3","epoch":0,"seq":9007199254740992}}]`, `200 [{"id":"k","code":"bad_producer","message":"producer epoch and seq go up to 2^53-1"}]`},
	}
	for _, st := range steps {
		if got := call(t, nc, "POST", "/publish", st.body); got != st.want {
			t.Fatalf("%s:\n got  %s\n want %s", st.body, got, st.want)
		}
	}
	// The object moves to another host: the producers are rebuilt from the log.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := host.Close(ctx); err != nil {
		t.Fatal(err)
	}
	hosttest.Start(t, natstest.Conn(t, s), runtime.Options{ID: "b", Classes: []objects.Class{stream.Class}})
	for _, st := range []struct{ body, want string }{
		{"[" + pub("c", 0, 2) + "," + pub("g", 1, 0) + "]", `200 [{"id":"c","code":"stale_producer_epoch","message":"stale producer epoch: a later epoch of this producer wrote already","producerEpoch":1},{"id":"g","seq":5,"duplicate":true}]`},
		{"[" + pub("l", 1, 1) + "]", `200 [{"id":"l","seq":6}]`},
		{`[{"id":"m","data":1}]`, `200 [{"id":"m","seq":7}]`},
	} {
		if got := call(t, nc, "POST", "/publish", st.body); got != st.want {
			t.Fatalf("after the move, %s:\n got  %s\n want %s", st.body, got, st.want)
		}
	}
	if got := call(t, nc, "GET", "/info", ""); got != `200 {"firstSeq":1,"lastSeq":7}` {
		t.Fatalf("info %s", got)
	}
}

// TestProducerWindow: a retry older than the producer's window stores nothing and says so.
func TestProducerWindow(t *testing.T) {
	nc := startStreamHost(t)
	for from := 0; from < 2200; from += 1000 {
		var items []string
		for i := from; i < min(from+1000, 2200); i++ {
			items = append(items, pub(fmt.Sprint(i), 0, uint64(i)))
		}
		if got := call(t, nc, "POST", "/publish", "["+strings.Join(items, ",")+"]"); !strings.HasPrefix(got, "200 ") || strings.Contains(got, "code") {
			t.Fatalf("publish from %d: %.200s", from, got)
		}
	}
	if got := call(t, nc, "POST", "/publish", "["+pub("r", 0, 2199)+"]"); got != `200 [{"id":"r","seq":2200,"duplicate":true}]` {
		t.Fatalf("the last one again: %s", got)
	}
	if got := call(t, nc, "POST", "/publish", "["+pub("r", 0, 3)+"]"); !strings.Contains(got, `"code":"duplicate_seq_unknown"`) {
		t.Fatalf("an old one again: %s", got)
	}
	if got := call(t, nc, "GET", "/info", ""); got != `200 {"firstSeq":1,"lastSeq":2200}` {
		t.Fatalf("info %s", got)
	}
}
