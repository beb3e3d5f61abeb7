// Package holdfast assembles the holdfast binary. A user who wants their own object
// classes and functions builds a binary in one line of main:
//
//	func main() { holdfast.Main(holdfast.WithClasses(chat.Room, chat.Limiter), holdfast.WithFunction("chat", chat.Edge)) }
//
// The public SDKs are packages objects and functions; everything else is internal.
package holdfast

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/examples/chat"
	"github.com/holdfast/holdfast/examples/counter"
	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/app"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/streams"
)

// Option adds to what a binary serves.
type Option func(*app.Registry)

// WithClasses registers object classes.
func WithClasses(classes ...objects.Class) Option {
	return func(r *app.Registry) { r.Classes = append(r.Classes, classes...) }
}

// WithFunction registers a function under the name routes use.
func WithFunction(name string, h functions.Handler) Option {
	return func(r *app.Registry) { r.Functions[name] = h }
}

// WithStreamHooks sets the server hooks of durable streams: authorization of each
// subscribe and publish, and a transform of each message before it is broadcast
// (package streams; docs/streams.md).
func WithStreamHooks(h streams.Hooks) Option {
	return func(r *app.Registry) { r.StreamHooks = h }
}

// BuiltinClasses are the classes the stock binary ships.
func BuiltinClasses() []objects.Class {
	return []objects.Class{counter.Class, chat.Room, chat.Limiter, stream.Class}
}

// builtinFunctions are the functions the stock binary ships.
func builtinFunctions() map[string]functions.Handler {
	return map[string]functions.Handler{"chat": chat.Edge}
}

// Main runs the CLI with os.Args and exits. The stock binary's built-in classes are
// always included. Unless GOGC is set, it collects garbage at 200% heap growth.
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
	reg := app.Registry{Classes: BuiltinClasses(), Functions: builtinFunctions()}
	for _, o := range opts {
		o(&reg)
	}
	return runCLI(ctx, args, reg)
}
