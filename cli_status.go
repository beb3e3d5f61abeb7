package holdfast

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/holdfast/holdfast/internal/app"
	"github.com/holdfast/holdfast/internal/status"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stdout is where commands that print results write; tests replace it.
var stdout io.Writer = os.Stdout

// runStatus is `holdfast status [flags]` (the live hosts and gateways) and `holdfast status
// objects --class C [flags]` (C's active objects and their hosts).
func runStatus(ctx context.Context, args []string) error {
	objectsMode := len(args) > 0 && args[0] == "objects"
	cmd, summary := "status", "Prints the live object hosts (with their active object counts) and gateways (with their\nconnections by transport), read from the cluster's buckets."
	if objectsMode {
		args = args[1:]
		cmd, summary = "status objects", "Prints the active objects of a class and the host each lives on."
	}
	f := newFlags(cmd, summary)
	n := f.natsClient()
	asJSON := f.fs.Bool("json", false, "print JSON instead of text")
	timeout := f.fs.Duration("timeout", 10*time.Second, "give up after this long")
	var class *string
	if objectsMode {
		class = f.fs.String("class", "", "the class whose active objects to list (required)")
	}
	if err := f.parse(args); err != nil {
		return helpOK(err)
	}
	if objectsMode && *class == "" {
		return &usageError{"holdfast status objects: --class is required (for example --class Counter)"}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts, err := n.auth.Options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(n.urls, append(opts, nats.Name("holdfast-status"), nats.CustomInboxPrefix(app.InboxStatus), nats.Timeout(*timeout))...)
	if err != nil {
		return fmt.Errorf("cannot reach NATS at %s: %w", n.urls, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var out interface {
		WriteText(io.Writer, time.Time) error
	}
	if objectsMode {
		out, err = status.ListObjects(ctx, js, *class)
	} else {
		out, err = status.Read(ctx, js)
	}
	if err != nil {
		return fmt.Errorf("%w (is Holdfast running against %s?)", err, n.urls)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return out.WriteText(stdout, time.Now())
}
