package holdfast

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/app"
	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/localdev"
	"github.com/holdfast/holdfast/internal/metrics"
	hfruntime "github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats.go"
)

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

const usage = `holdfast: a self-hosted runtime for stateful real-time apps on NATS JetStream.

Usage:
  holdfast dev      [flags]   the local emulator: embedded NATS, gateway and objects in one process
  holdfast gateway  [flags]   a stateless edge gateway, against a NATS cluster
  holdfast objects  [flags]   an object host, against a NATS cluster
  holdfast status   [flags]   the live object hosts and gateways (status objects --class C: C's active objects)
  holdfast version            print versions

Every flag can also be set by its environment variable, shown in each command's --help.
`

func runCLI(ctx context.Context, args []string, reg app.Registry, ready io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return &usageError{"no command given"}
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], reg, ready)
	case "gateway":
		return runGateway(ctx, args[1:], reg, ready)
	case "objects":
		return runObjects(ctx, args[1:], reg, ready)
	case "status":
		return runStatus(ctx, args[1:])
	case "version", "--version", "-v":
		fmt.Println(versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}

// flags is a flag set whose every flag falls back to an environment variable
// HOLDFAST_<NAME>, with '-' as '_'.
type flags struct {
	fs  *flag.FlagSet
	cmd string
}

func newFlags(cmd, summary string) *flags {
	f := &flags{fs: flag.NewFlagSet("holdfast "+cmd, flag.ContinueOnError), cmd: cmd}
	f.fs.Usage = func() {
		out := f.fs.Output()
		fmt.Fprintf(out, "Usage: holdfast %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", cmd, summary)
		f.fs.VisitAll(func(fl *flag.Flag) {
			fmt.Fprintf(out, "  --%s  (%s)\n", fl.Name, envName(fl.Name))
			fmt.Fprintf(out, "        %s", fl.Usage)
			if fl.DefValue != "" && fl.DefValue != "false" {
				fmt.Fprintf(out, " (default %q)", fl.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	return f
}

func envName(flagName string) string {
	return "HOLDFAST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies the command line, then the environment for flags not given.
func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &usageError{err.Error()}
	}
	if f.fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", f.fs.Arg(0))}
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var err error
	f.fs.VisitAll(func(fl *flag.Flag) {
		if set[fl.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(fl.Name)); ok {
			if e := f.fs.Set(fl.Name, v); e != nil {
				err = &usageError{fmt.Sprintf("%s=%q: %v", envName(fl.Name), v, e)}
			}
		}
	})
	return err
}

// set reports whether a flag was given, on the command line or in the environment.
func (f *flags) set(name string) bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

var errHelp = errors.New("help requested")

// common are the flags every serving command has.
type common struct {
	config, logLevel, logFormat string
}

// common adds the flags every serving command has; logFormat is the command's default:
// text for the emulator, JSON (one object per line, for a log pipeline) in production.
func (f *flags) common(logFormat string) *common {
	c := &common{}
	f.fs.StringVar(&c.config, "config", "", "path of holdfast.toml (default ./holdfast.toml when present)")
	f.fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	f.fs.StringVar(&c.logFormat, "log-format", logFormat, "text or json")
	return c
}

// metricsListen adds --metrics-listen.
func (f *flags) metricsListen(what string) *string {
	return f.fs.String("metrics-listen", "", "also serve /metrics (Prometheus) and /healthz here, without authentication"+what+": an address on a private network, e.g. 10.0.0.5:9090")
}

func (c *common) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, &usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.logLevel)}
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(logOutput, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(logOutput, o)), nil
	}
	return nil, &usageError{fmt.Sprintf("--log-format %q: want text or json", c.logFormat)}
}

// logOutput is where the serving commands log; tests replace it.
var logOutput io.Writer = os.Stderr

// setup parses the command line and returns the logger and the config.
func (c *common) setup(f *flags, args []string, reg app.Registry) (*slog.Logger, *config.Config, error) {
	if err := f.parse(args); err != nil {
		return nil, nil, err
	}
	log, err := c.logger()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := c.load(reg)
	if err != nil {
		return nil, nil, err
	}
	return log, cfg, nil
}

// load reads the config file: --config, else ./holdfast.toml when present, else the
// built-in defaults, less the objects of classes this binary was not built with (the
// default COUNTER needs the Counter class, which the stock binary has).
func (c *common) load(reg app.Registry) (*config.Config, error) {
	path := c.config
	if path == "" {
		if _, err := os.Stat("holdfast.toml"); err == nil {
			path = "holdfast.toml"
		}
	}
	if path == "" {
		return app.DefaultConfig(reg), nil
	}
	return config.Load(path)
}

// longPoll adds --long-poll-timeout; the returned function applies it to a config when
// it was given.
func (f *flags) longPoll() func(*config.Config) {
	d := f.fs.Duration("long-poll-timeout", 30*time.Second, "how long a Durable Streams long-poll read waits for data")
	return func(cfg *config.Config) {
		if f.set("long-poll-timeout") {
			cfg.Streams.LongPollTimeout = *d
		}
	}
}

// natsFlags are the flags of commands that join a NATS cluster.
type natsFlags struct {
	urls        string
	auth        app.NATSAuth
	insecure    bool
	replication cluster.Policy
}

func (f *flags) nats() *natsFlags {
	n := f.natsClient()
	f.fs.IntVar(&n.replication.Replicas, "replicas", 0, "copies JetStream keeps of every stream and bucket (default: 3 on a cluster of three or more JetStream servers, 1 on a single server)")
	f.fs.BoolVar(&n.replication.AllowSingleReplica, "allow-single-replica", false, "accept --replicas 1 on a cluster of several servers, where losing one server loses acknowledged writes")
	f.fs.BoolVar(&n.insecure, "insecure", false, "start without authentication (tests and trusted networks only)")
	return n
}

// natsClient adds the flags that say where NATS is and how to log in.
func (f *flags) natsClient() *natsFlags {
	n := &natsFlags{}
	f.fs.StringVar(&n.urls, "nats", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated")
	f.fs.StringVar(&n.auth.CredsFile, "nats-creds", "", "NATS credentials file")
	f.fs.StringVar(&n.auth.NKeyFile, "nats-nkey", "", "NATS nkey seed file")
	f.fs.StringVar(&n.auth.User, "nats-user", "", "NATS user")
	f.fs.StringVar(&n.auth.Password, "nats-password", "", "NATS password")
	f.fs.StringVar(&n.auth.Token, "nats-token", "", "NATS token")
	f.fs.StringVar(&n.auth.TLSCA, "nats-tls-ca", "", "PEM file of the CA that signed the NATS servers' certificates (a private CA)")
	f.fs.StringVar(&n.auth.TLSCert, "nats-tls-cert", "", "client certificate (PEM), for NATS servers that verify clients")
	f.fs.StringVar(&n.auth.TLSKey, "nats-tls-key", "", "the client certificate's key (PEM)")
	return n
}

// replicas decides the replicas of Holdfast's streams and buckets against the cluster
// (app.Replication); ctx ending first is not an error.
func (n *natsFlags) replicas(ctx context.Context, nc *nats.Conn, log *slog.Logger) (int, error) {
	r, err := app.Replication(ctx, nc, n.replication, log)
	switch {
	case ctx.Err() != nil:
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("refusing to start: %w", err)
	}
	return r, nil
}

func runDev(ctx context.Context, args []string, reg app.Registry, ready io.Writer) error {
	f := newFlags("dev", "Runs the local emulator: an embedded nats-server with JetStream, one object host and\none gateway in one process. Needs no config file. Ctrl-C drains and exits.")
	c := f.common("text")
	listen := f.fs.String("listen", config.DefaultListen, "HTTP and WebSocket listen address")
	persist := f.fs.String("persist-to", config.DefaultPersistTo, "directory holding all state")
	natsListen := f.fs.String("nats-listen", "", "also expose the embedded NATS here (e.g. 127.0.0.1:4222) so other holdfast processes can join")
	s3Listen := f.fs.String("s3-listen", config.DefaultS3Listen, "S3-compatible endpoint listen address")
	metricsListen := f.metricsListen(" (they are also at /metrics on --listen)")
	longPoll := f.longPoll()
	log, cfg, err := c.setup(f, args, reg)
	if err != nil {
		return helpOK(err)
	}
	longPoll(cfg)
	cfg.Streams.WebhookAllowLocalhost = true // local development: webhooks on this machine
	if f.set("listen") || cfg.Dev.Listen == "" {
		cfg.Dev.Listen = *listen
	}
	if f.set("persist-to") || cfg.Dev.PersistTo == "" {
		cfg.Dev.PersistTo = *persist
	}
	if f.set("nats-listen") {
		cfg.Dev.NATSListen = *natsListen
	}
	if f.set("s3-listen") || cfg.Dev.S3Listen == "" {
		cfg.Dev.S3Listen = *s3Listen
	}
	return localdev.Run(ctx, localdev.Options{Config: cfg, Registry: reg, Logger: log, Ready: ready, Version: version(), MetricsListen: *metricsListen})
}

func runGateway(ctx context.Context, args []string, reg app.Registry, ready io.Writer) error {
	f := newFlags("gateway", "Runs a stateless edge gateway against a NATS cluster. Refuses to start without\n[auth] api_keys in the config unless given --insecure.")
	c := f.common("json")
	n := f.nats()
	listen := f.fs.String("listen", "0.0.0.0:8787", "HTTP and WebSocket listen address")
	s3Listen := f.fs.String("s3-listen", "", "also serve the S3-compatible endpoint here (needs [[auth.s3]] credentials)")
	metricsListen := f.metricsListen(" (on --listen, /metrics needs an API key)")
	longPoll := f.longPoll()
	drainDelay := f.fs.Duration("drain-delay", 0, "on SIGTERM, how long /healthz answers 503 draining before the gateway closes its connections (the time a load balancer takes to notice; docs/deploy.md)")
	log, cfg, err := c.setup(f, args, reg)
	if err != nil {
		return helpOK(err)
	}
	longPoll(cfg)
	if len(cfg.Auth.APIKeys) == 0 && !n.insecure {
		return &usageError{"refusing to start an open gateway: set [auth] api_keys in holdfast.toml, or pass --insecure to run without authentication"}
	}
	opts, err := app.GatewayOptions(cfg, reg, log)
	if err != nil {
		return err
	}
	if *s3Listen != "" && len(cfg.Auth.S3) == 0 {
		return &usageError{"--s3-listen needs S3 credentials: add [[auth.s3]] access_key and secret_key to holdfast.toml"}
	}
	mreg := metrics.NewRegistry(version())
	opts.Metrics = mreg
	if len(cfg.Auth.APIKeys) > 0 {
		// Behind the API key on the public listener; a gateway without keys serves its
		// metrics only on --metrics-listen.
		opts.MetricsHandler = metrics.Handler(mreg)
	}
	nm := metrics.NewNATS(mreg)
	nc, err := app.ConnectNATS(n.urls, "holdfast-gateway", app.InboxGateway, n.auth, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctrl, err := app.ConnectNATS(n.urls, "holdfast-gateway-control", app.InboxGateway, n.auth, log)
	if err != nil {
		return err
	}
	defer ctrl.Close()
	nm.Add(metrics.ConnGateway, nc)
	nm.Add(metrics.ConnGatewayControl, ctrl)
	ln, err := app.Listen(*listen, "holdfast gateway")
	if err != nil {
		return err
	}
	// Until the replicas are decided and the gateway is built, every request (/healthz
	// included) is the 503 the gateway itself answers until it reaches JetStream.
	var handler atomic.Pointer[http.Handler]
	srv := app.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, "not connected to NATS JetStream yet")
	}), log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	serving := false
	defer func() {
		if !serving {
			_ = srv.Close()
		}
	}()
	if opts.Replicas, err = n.replicas(ctx, nc, log); err != nil || ctx.Err() != nil {
		return err
	}
	opts.ControlConn, opts.Version, opts.Address = ctrl, version(), "http://"+ln.Addr().String()
	files := app.StartFiles(ctx, nc, cfg, cfg.Auth.S3, opts.Replicas, log, metrics.NewFiles(mreg))
	defer files.Close()
	opts.Mounts, opts.Buckets, opts.Readiness = files.Mounts(), files.Buckets(), files.Ready
	if *s3Listen != "" {
		s3ln, err := app.Listen(*s3Listen, "holdfast gateway S3 endpoint (--s3-listen)")
		if err != nil {
			return err
		}
		s3srv := app.NewServer(files.S3Handler(), log)
		go func() { _ = s3srv.Serve(s3ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			app.Shutdown(sctx, s3srv)
		}()
	}
	gw, err := gateway.New(nc, opts)
	if err != nil {
		return err
	}
	h := gw.Handler()
	handler.Store(&h)
	serving = true
	extra := ""
	if *metricsListen != "" {
		ms, err := app.ServeMetrics(*metricsListen, mreg, gw.Healthy, log)
		if err != nil {
			return err
		}
		defer ms.Close(context.Background())
		extra = fmt.Sprintf(", metrics on http://%s/metrics", ms.Addr())
	}
	fmt.Fprintf(ready, "holdfast gateway %s listening on http://%s (nats %s%s)\n", gw.ID(), ln.Addr(), n.urls, extra)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	// Drain first: out of the load balancer's rotation, then every long-lived client sent
	// to another gateway (gateway/drain.go); the HTTP server then waits only for short
	// requests.
	sctx, cancel := context.WithTimeout(context.Background(), *drainDelay+15*time.Second)
	defer cancel()
	_ = gw.Drain(sctx, *drainDelay)
	app.Shutdown(sctx, srv)
	_ = gw.Close(sctx)
	_ = ctrl.Drain()
	return nc.Drain()
}

func runObjects(ctx context.Context, args []string, reg app.Registry, ready io.Writer) error {
	f := newFlags("objects", "Runs an object host against a NATS cluster. Refuses to start without NATS credentials\nunless given --insecure.")
	c := f.common("json")
	n := f.nats()
	id := f.fs.String("host-id", "", "this host's id in leases (default: random)")
	metricsListen := f.metricsListen("")
	log, cfg, err := c.setup(f, args, reg)
	if err != nil {
		return helpOK(err)
	}
	if !n.auth.Configured(n.urls) && !n.insecure {
		return &usageError{"refusing to start an object host without NATS authentication: pass --nats-creds, --nats-nkey, --nats-user/--nats-password or --nats-token, or --insecure"}
	}
	mreg := metrics.NewRegistry(version())
	nm := metrics.NewNATS(mreg)
	nc, err := app.ConnectNATS(n.urls, "holdfast-objects", app.InboxObjects, n.auth, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctrl, err := app.ConnectNATS(n.urls, "holdfast-objects-control", app.InboxObjects, n.auth, log)
	if err != nil {
		return err
	}
	defer ctrl.Close()
	nm.Add(metrics.ConnObjects, nc)
	nm.Add(metrics.ConnObjectsControl, ctrl)
	opts := app.HostOptions(cfg, reg, log)
	opts.ID, opts.ControlConn, opts.Version, opts.Metrics = *id, ctrl, version(), mreg
	var started atomic.Pointer[hfruntime.Host]
	extra := ""
	if *metricsListen != "" {
		// Up before the host, so that a health check sees 503 while it cannot start yet.
		ms, err := app.ServeMetrics(*metricsListen, mreg, func() error {
			if h := started.Load(); h != nil {
				return h.Ready()
			}
			return errors.New("the object host is starting")
		}, log)
		if err != nil {
			return err
		}
		defer ms.Close(context.Background())
		extra = fmt.Sprintf(", metrics on http://%s/metrics", ms.Addr())
	}
	if opts.Replicas, err = n.replicas(ctx, nc, log); err != nil || ctx.Err() != nil {
		return err
	}
	var host *hfruntime.Host
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		host, err = hfruntime.New(sctx, nc, opts)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, cluster.ErrRefused) {
			return fmt.Errorf("refusing to start: %w", err)
		}
		log.Warn("cannot start the object host yet; retrying", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	started.Store(host)
	fmt.Fprintf(ready, "holdfast objects host %s ready (nats %s%s)\n", host.ID(), n.urls, extra)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = host.Close(sctx)
	_ = ctrl.Drain()
	return nc.Drain()
}

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func versionString() string {
	natsV := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/nats-io/nats-server/v2" {
				natsV = d.Version
			}
		}
	}
	return fmt.Sprintf("holdfast %s (nats-server %s)", version(), natsV)
}

// version is this binary's module version, "(devel)" for a build from a checkout.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
