package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/holdfast/holdfast/examples/chat"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

var bindings = map[string]string{chat.RoomsBinding: "ChatRoom", chat.LimitersBinding: "RateLimiter"}

// system is Holdfast serving the chat: an embedded nats-server with JetStream, two object
// hosts (each on its own NATS connection) and one gateway behind a real HTTP server.
type system struct {
	base  string
	hosts []*runtime.Host
	stops []func()
}

func (s *system) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

func startHoldfast(cfg config) (_ *system, err error) {
	ctx := context.Background()
	sys := &system{}
	defer func() {
		if err != nil {
			sys.stop()
		}
	}()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp("", "holdfast-bench-chat-")
	if err != nil {
		return nil, err
	}
	sys.stops = append(sys.stops, func() { os.RemoveAll(dir) })
	s, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		return nil, err
	}
	sys.stops = append(sys.stops, s.Shutdown)
	for i := range 2 {
		nc, err := natsembed.Connect(s, fmt.Sprint("bench-host-", i))
		if err != nil {
			return nil, err
		}
		sys.stops = append(sys.stops, nc.Close)
		h, err := runtime.New(ctx, nc, runtime.Options{
			ID:          fmt.Sprint("host-", i),
			Classes:     []objects.Class{chat.Room, chat.Limiter},
			Namespaces:  bindings,
			Vars:        map[string]string{"CHAT_RATE_INTERVAL": cfg.limitInterval},
			IdleTimeout: time.Hour,
			Logger:      quiet,
		})
		if err != nil {
			return nil, err
		}
		sys.stops = append(sys.stops, closeWithin(h.Close))
		sys.hosts = append(sys.hosts, h)
	}
	gnc, err := natsembed.Connect(s, "bench-gateway")
	if err != nil {
		return nil, err
	}
	sys.stops = append(sys.stops, gnc.Close)
	gw, err := gateway.New(gnc, gateway.Options{
		Routes:             []gateway.Route{{Pattern: "/api/", Function: chat.Edge}},
		Namespaces:         bindings,
		TrustedProxyHeader: "X-Forwarded-For",
		Logger:             quiet,
	})
	if err != nil {
		return nil, err
	}
	sys.stops = append(sys.stops, closeWithin(gw.Close))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	sys.stops = append(sys.stops, func() { _ = srv.Close() })
	for deadline := time.Now().Add(30 * time.Second); !gw.Ready(); {
		if time.Now().After(deadline) {
			return nil, errors.New("gateway not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sys.base = "ws://" + ln.Addr().String()
	return sys, nil
}

// closeWithin is a stop step that drains a host or gateway for at most 10 s.
func closeWithin(close func(context.Context) error) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = close(ctx)
	}
}
