package status

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (rerun with -update after checking):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func TestReportText(t *testing.T) {
	r := &Report{
		Hosts: []wire.HostLease{
			{ID: "host-a", Epoch: "E1", Version: "v0.4.0", Started: now.Add(-90 * time.Minute), Classes: []string{"ChatRoom", "Counter", "Stream"}, Active: 1200},
			{ID: "host-b", Epoch: "E2", Started: now.Add(-5 * time.Second), Classes: []string{"Counter"}, Active: 0},
		},
		Gateways: []wire.GatewayPresence{
			{ID: "gw-1", Address: "http://10.0.0.5:8787", Version: "v0.4.0", Started: now.Add(-time.Hour), Connections: map[string]int{
				wire.ConnObjectSocket: 120, wire.ConnStreamSocket: 3400, wire.ConnEventSource: 12, wire.ConnLongPoll: 7, wire.ConnHTTP: 2,
			}},
			{ID: "gw-old"}, // an older gateway: its presence key holds only a time
		},
	}
	var b bytes.Buffer
	if err := r.WriteText(&b, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.golden", b.Bytes())

	b.Reset()
	if err := (&Report{}).WriteText(&b, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-empty.golden", b.Bytes())
}

func TestObjectsText(t *testing.T) {
	o := &Objects{Class: "Counter", Objects: []Object{
		{Class: "Counter", Name: "apples", Host: "host-a", Since: now.Add(-42 * time.Second)},
		{Class: "Counter", Name: "rooms/lobby", Host: "host-b", Since: now.Add(-3 * time.Hour)},
	}}
	var b bytes.Buffer
	if err := o.WriteText(&b, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "objects.golden", b.Bytes())
}

func TestActiveNeedsALiveEpoch(t *testing.T) {
	hosts := map[string]wire.HostLease{"a": {ID: "a", Epoch: "E2"}}
	for _, c := range []struct {
		l    wire.Lease
		want bool
	}{
		{wire.Lease{Host: "a", Epoch: "E2"}, true},
		{wire.Lease{Host: "a", Epoch: "E1"}, false}, // an epoch of a that ended
		{wire.Lease{Host: "b", Epoch: "E9"}, false}, // a host that is gone
		{wire.Lease{Host: "c"}, true},               // an older host's TTL'd lease
	} {
		if got := active(c.l, hosts); got != c.want {
			t.Errorf("active(%+v) = %v, want %v", c.l, got, c.want)
		}
	}
}
