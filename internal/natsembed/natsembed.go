// Package natsembed owns starting an in-process nats-server with JetStream on disk, as
// `holdfast dev` and the tests use it.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config says where the embedded server keeps its state and whether it listens.
type Config struct {
	// StoreDir holds JetStream's files. Required.
	StoreDir string
	// Listen, when set ("127.0.0.1:4222"), exposes the server on TCP so that other
	// processes can join. Empty means in-process connections only.
	Listen string
	// MaxPayload bounds one NATS message. Zero means 8 MiB.
	MaxPayload int32
	// Logs enables the server's own log on stderr.
	Logs bool
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	opts := &server.Options{
		ServerName:         "holdfast-dev",
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		DontListen:         cfg.Listen == "",
		NoSigs:             true,
		NoLog:              !cfg.Logs,
		MaxPayload:         cfg.MaxPayload,
		JetStreamMaxMemory: 256 << 20,
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if cfg.Logs {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsembed: server not ready after 30s (is the listen address in use?)")
	}
	return s, nil
}

// Connect opens an in-process client connection to s.
func Connect(s *server.Server, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s), nats.Name(name), nats.MaxReconnects(-1)}, opts...)
	return nats.Connect("", opts...)
}
