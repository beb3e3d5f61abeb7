// Package localdev is `holdfast dev`: the local emulator, like `wrangler dev`. It runs an
// embedded nats-server with JetStream on disk, one object host and one gateway in a single
// process, so that a developer needs nothing but the binary. State lives under the persist
// directory and survives restarts; other `holdfast objects` and `holdfast gateway`
// processes can join through the optional NATS listener.
package localdev

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/app"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/holdfast/holdfast/runtime"
)

// Options of a dev run beyond the config file.
type Options struct {
	Config   *config.Config
	Registry app.Registry
	Logger   *slog.Logger
	// Ready, when set, receives the one ready line; default stdout.
	Ready io.Writer
	// Mounts adds handlers to the gateway (the file API, for instance).
	Mounts map[string]http.Handler
}

// Run serves until ctx ends, then drains: HTTP first, then the gateway's sockets, then the
// host's commits and leases, then NATS.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Logger
	if log == nil {
		log = slog.Default()
	}
	gwOpts, err := app.GatewayOptions(cfg, o.Registry, log)
	if err != nil {
		return err
	}
	gwOpts.Mounts = o.Mounts
	storeDir, err := filepath.Abs(filepath.Join(cfg.Dev.PersistTo, "nats"))
	if err != nil {
		return err
	}
	ln, err := app.Listen(cfg.Dev.Listen, "holdfast dev")
	if err != nil {
		return err
	}
	defer ln.Close()
	ns, err := natsembed.Start(natsembed.Config{StoreDir: storeDir, Listen: cfg.Dev.NATSListen})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	hostConn, err := natsembed.Connect(ns, "holdfast-dev-objects")
	if err != nil {
		return err
	}
	defer hostConn.Close()
	gwConn, err := natsembed.Connect(ns, "holdfast-dev-gateway")
	if err != nil {
		return err
	}
	defer gwConn.Close()

	var host *runtime.Host
	if len(o.Registry.Classes) > 0 {
		host, err = runtime.New(ctx, hostConn, app.HostOptions(cfg, o.Registry, log))
		if err != nil {
			return err
		}
	}
	gw, err := gateway.New(gwConn, gwOpts)
	if err != nil {
		return err
	}
	srv := app.NewServer(gw.Handler(), log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	natsURL := "in-process only (set --nats-listen to share it)"
	if cfg.Dev.NATSListen != "" {
		natsURL = "nats://" + ns.Addr().String()
	}
	ready := o.Ready
	if ready == nil {
		ready = os.Stdout
	}
	fmt.Fprintf(ready, "holdfast dev ready: http://%s  nats: %s  state: %s\n", ln.Addr(), natsURL, cfg.Dev.PersistTo)

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	app.Shutdown(sctx, srv)
	_ = gw.Close(sctx)
	if host != nil {
		_ = host.Close(sctx)
	}
	_ = gwConn.Drain()
	_ = hostConn.Drain()
	return nil
}
