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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/app"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
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
	// Version is announced by the host and the gateway (holdfast status).
	Version string
	// MetricsListen, when set, also serves /metrics and /healthz there (--metrics-listen).
	MetricsListen string
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
	// One registry for the gateway and the host: their metrics have names of their own.
	reg := metrics.NewRegistry(o.Version)
	gwOpts.Metrics, gwOpts.MetricsHandler = reg, metrics.Handler(reg)
	nm := metrics.NewNATS(reg)
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
	// The control planes (lease renewals, presence, owner watches) get connections of
	// their own, so that a flood of requests cannot delay them past their TTLs.
	hostCtrl, err := natsembed.Connect(ns, "holdfast-dev-objects-control")
	if err != nil {
		return err
	}
	defer hostCtrl.Close()
	gwCtrl, err := natsembed.Connect(ns, "holdfast-dev-gateway-control")
	if err != nil {
		return err
	}
	defer gwCtrl.Close()
	nm.Add(metrics.ConnObjects, hostConn)
	nm.Add(metrics.ConnObjectsControl, hostCtrl)
	nm.Add(metrics.ConnGateway, gwConn)
	nm.Add(metrics.ConnGatewayControl, gwCtrl)

	s3creds := cfg.Auth.S3
	if len(s3creds) == 0 {
		s3creds = []config.S3Credential{app.DevS3Credential}
	}
	files := app.StartFiles(ctx, gwConn, cfg, s3creds, 1, log, metrics.NewFiles(reg))
	defer files.Close()
	gwOpts.Mounts = map[string]http.Handler{}
	for p, h := range files.Mounts() {
		gwOpts.Mounts[p] = h
	}
	for p, h := range o.Mounts {
		gwOpts.Mounts[p] = h
	}
	gwOpts.Buckets = files.Buckets()
	gwOpts.Readiness = files.Ready
	var s3srv *http.Server
	var s3ln net.Listener
	if cfg.Dev.S3Listen != "" {
		if s3ln, err = app.Listen(cfg.Dev.S3Listen, "holdfast dev S3 endpoint (--s3-listen)"); err != nil {
			return err
		}
		defer s3ln.Close()
		s3srv = app.NewServer(files.S3Handler(), log)
		go func() { _ = s3srv.Serve(s3ln) }()
	}

	var host *runtime.Host
	if len(o.Registry.Classes) > 0 {
		hostOpts := app.HostOptions(cfg, o.Registry, log)
		hostOpts.ControlConn, hostOpts.Version, hostOpts.Metrics = hostCtrl, o.Version, reg
		host, err = runtime.New(ctx, hostConn, hostOpts)
		if err != nil {
			return err
		}
	}
	gwOpts.ControlConn, gwOpts.Version, gwOpts.Address = gwCtrl, o.Version, "http://"+ln.Addr().String()
	gw, err := gateway.New(gwConn, gwOpts)
	if err != nil {
		return err
	}
	srv := app.NewServer(gw.Handler(), log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	metricsAt := "http://" + ln.Addr().String() + "/metrics"
	if o.MetricsListen != "" {
		ms, err := app.ServeMetrics(o.MetricsListen, reg, gw.Healthy, log)
		if err != nil {
			return err
		}
		defer ms.Close(context.Background())
		metricsAt = "http://" + ms.Addr().String() + "/metrics"
	}

	natsURL := "in-process only (set --nats-listen to share it)"
	status := "holdfast status (needs --nats-listen)"
	if cfg.Dev.NATSListen != "" {
		natsURL = "nats://" + ns.Addr().String()
		status = "holdfast status --nats " + natsURL
	}
	// "ready" means requests are served: the gateway connects to JetStream in the
	// background, and before that it answers 503 (a benchmark dialing right after the ready
	// line met those).
	waitReady(ctx, gw, 30*time.Second)
	ready := o.Ready
	if ready == nil {
		ready = os.Stdout
	}
	s3 := "off"
	if s3ln != nil {
		s3 = "http://" + s3ln.Addr().String()
		if len(cfg.Auth.S3) == 0 {
			s3 += fmt.Sprintf(" (access key %q, secret key %q)", app.DevS3Credential.AccessKey, app.DevS3Credential.SecretKey)
		}
	}
	fmt.Fprintf(ready, "holdfast dev ready: http://%s  s3: %s  nats: %s  state: %s  status: %s  metrics: %s\n", ln.Addr(), s3, natsURL, cfg.Dev.PersistTo, status, metricsAt)

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = gw.Drain(sctx, 0) // long-lived clients first: the HTTP server waits for none of them
	app.Shutdown(sctx, srv)
	if s3srv != nil {
		app.Shutdown(sctx, s3srv)
	}
	_ = gw.Close(sctx)
	if host != nil {
		_ = host.Close(sctx)
	}
	_ = gwConn.Drain()
	_ = hostConn.Drain()
	_ = gwCtrl.Drain()
	_ = hostCtrl.Drain()
	return nil
}

// waitReady waits until gw serves requests, ctx ends, or limit passes.
func waitReady(ctx context.Context, gw *gateway.Gateway, limit time.Duration) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(limit)
	for !gw.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-t.C:
		}
	}
}
