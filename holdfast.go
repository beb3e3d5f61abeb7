// Package holdfast assembles the holdfast binary. A user who wants their own object
// classes and functions builds a binary in one line of main:
//
//	func main() { holdfast.Main(holdfast.WithClasses(chat.Room, chat.Limiter), holdfast.WithFunction("chat", chat.Edge)) }
//
// Such a binary links only what it names, plus the built-in Stream class; the stock binary
// (cmd/holdfast) names the examples' classes the same way. Run embeds any command, `dev`
// included, in a program of one's own. The public SDKs are packages objects and functions;
// everything else is internal.
package holdfast

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/app"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/streams"
)

// Option adds to what a binary serves.
type Option func(*settings)

type settings struct {
	reg   app.Registry
	ready io.Writer
}

// WithClasses registers object classes.
func WithClasses(classes ...objects.Class) Option {
	return func(s *settings) { s.reg.Classes = append(s.reg.Classes, classes...) }
}

// WithFunction registers a function under the name routes use.
func WithFunction(name string, h functions.Handler) Option {
	return func(s *settings) { s.reg.Functions[name] = h }
}

// WithReady sends the one line each command prints once it serves ("holdfast dev ready:
// http://127.0.0.1:8787 ...") to w instead of standard output: a program embedding a
// command learns its addresses there (with --listen 127.0.0.1:0, say).
func WithReady(w io.Writer) Option {
	return func(s *settings) { s.ready = w }
}

// WithStreamHooks sets the server hooks of durable streams: authorization of each
// subscribe and publish, and a transform of each message before it is broadcast
// (package streams; docs/streams.md).
func WithStreamHooks(h streams.Hooks) Option {
	return func(s *settings) { s.reg.StreamHooks = h }
}

// BuiltinClasses are the classes every binary serves: the Stream class behind durable
// streams (docs/streams.md).
func BuiltinClasses() []objects.Class {
	return []objects.Class{stream.Class}
}

// Main runs the CLI with os.Args and exits. The built-in classes are always included.
// Unless GOGC is set, it collects garbage at 200% heap growth.
func Main(opts ...Option) {
	if os.Getenv("GOGC") == "" {
		// Requests allocate small, short-lived objects; collecting at 2x the live heap
		// instead of 1x costs some memory and saves a good share of CPU.
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], opts...)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdfast:", err)
		os.Exit(exitCode(err))
	}
}

// Run runs one CLI invocation until ctx ends.
func Run(ctx context.Context, args []string, opts ...Option) error {
	s := settings{reg: app.Registry{Classes: BuiltinClasses(), Functions: map[string]functions.Handler{}}, ready: os.Stdout}
	for _, o := range opts {
		o(&s)
	}
	return runCLI(ctx, args, s.reg, s.ready)
}
