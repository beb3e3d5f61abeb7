// Package app owns turning a loaded holdfast.toml and the registered classes and functions
// into the options of a gateway and an object host, connecting to NATS, and serving HTTP.
// The CLI (package holdfast) and internal/localdev both assemble processes through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
	"github.com/holdfast/holdfast/streams"
	"github.com/nats-io/nats.go"
)

// Registry is what a binary was built with: object classes, named functions and the
// server hooks of durable streams.
type Registry struct {
	Classes     []objects.Class
	Functions   map[string]functions.Handler
	StreamHooks streams.Hooks
}

// Class returns the registered class called name.
func (r Registry) Class(name string) (objects.Class, bool) {
	for _, c := range r.Classes {
		if c.Name == name {
			return c, true
		}
	}
	return objects.Class{}, false
}

// DefaultConfig is config.Default less the object bindings (and their routes) of classes
// reg lacks: a binary without the Counter class starts without a config file too.
func DefaultConfig(reg Registry) *config.Config {
	cfg := config.Default()
	kept := map[string]bool{}
	var bs []config.ObjectBinding
	for _, b := range cfg.DurableObjects.Bindings {
		if _, ok := reg.Class(b.ClassName); ok {
			bs = append(bs, b)
			kept[b.Name] = true
		}
	}
	cfg.DurableObjects.Bindings = bs
	var rs []config.Route
	for _, r := range cfg.Routes {
		if r.Object == "" || kept[r.Object] {
			rs = append(rs, r)
		}
	}
	cfg.Routes = rs
	return cfg
}

// GatewayOptions builds a gateway's options from cfg. Every route must reach a declared
// binding of a class this binary has, or a function it has.
func GatewayOptions(cfg *config.Config, reg Registry, log *slog.Logger) (gateway.Options, error) {
	opts := gateway.Options{
		Namespaces:         map[string]string{},
		Vars:               cfg.Vars,
		APIKeys:            cfg.Auth.APIKeys,
		AllowedOrigins:     cfg.Auth.AllowedOrigins,
		MaxBodyBytes:       cfg.Limits.MaxBodyBytes,
		MaxMessage:         cfg.Limits.MaxWebSocketMessageBytes,
		MaxConnections:     cfg.Limits.MaxConnections,
		RequestTimeout:     cfg.Objects.RequestTimeout,
		TrustedProxyHeader: cfg.Auth.TrustedProxyHeader,
		Logger:             log,
		StreamHooks:        reg.StreamHooks,
	}
	// Durable streams (/v1/stream) are served when the binary has the Stream class.
	_, opts.Streams = reg.Class(gateway.StreamClass)
	opts.LongPollTimeout = cfg.Streams.LongPollTimeout
	opts.WebhookAllowLocalhost = cfg.Streams.WebhookAllowLocalhost
	opts.PublicURL = cfg.Streams.PublicURL
	for _, r := range cfg.Streams.Retention {
		opts.StreamRetention = append(opts.StreamRetention, gateway.StreamRetention{Pattern: r.Pattern, MaxMsgs: r.MaxMsgs, MaxBytes: r.MaxBytes, MaxAge: r.MaxAge})
	}
	// Errors name the file, line and column of the key, as the config's own do.
	var errs []error
	for i, b := range cfg.DurableObjects.Bindings {
		if _, ok := reg.Class(b.ClassName); !ok {
			errs = append(errs, cfg.Errorf(fmt.Sprintf("durable_objects.bindings[%d].class_name", i),
				"binding %q: class %q is not built into this binary (it has: %s)", b.Name, b.ClassName, classList(reg)))
		}
		opts.Namespaces[b.Name] = b.ClassName
	}
	for i, r := range cfg.Routes {
		rt := gateway.Route{Pattern: r.Pattern, Name: r.Name}
		switch {
		case r.Function != "":
			fn, ok := reg.Functions[r.Function]
			if !ok {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("routes[%d].function", i),
					"route %q: function %q is not built into this binary", r.Pattern, r.Function))
				continue
			}
			rt.Function = fn
		default:
			b, ok := cfg.Binding(r.Object)
			if !ok {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("routes[%d].object", i), "route %q: no object binding %q", r.Pattern, r.Object))
				continue
			}
			rt.Class = b.ClassName
		}
		opts.Routes = append(opts.Routes, rt)
	}
	return opts, errors.Join(errs...)
}

func classList(reg Registry) string {
	var n []string
	for _, c := range reg.Classes {
		n = append(n, c.Name)
	}
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

// HostOptions builds an object host's options from cfg.
func HostOptions(cfg *config.Config, reg Registry, log *slog.Logger) runtime.Options {
	ns := map[string]string{}
	for _, b := range cfg.DurableObjects.Bindings {
		ns[b.Name] = b.ClassName
	}
	return runtime.Options{
		Classes:        reg.Classes,
		LeaseTTL:       cfg.Objects.LeaseTTL,
		IdleTimeout:    cfg.Objects.IdleTimeout,
		RequestTimeout: cfg.Objects.RequestTimeout,
		Vars:           cfg.Vars,
		Namespaces:     ns,
		Logger:         log,
		Limits: runtime.Limits{
			MaxValueBytes:      cfg.Limits.MaxStorageValueBytes,
			MaxSockets:         cfg.Limits.MaxSocketsPerObject,
			MaxAttachmentBytes: cfg.Limits.MaxAttachmentBytes,
		},
	}
}

// NATSAuth holds client credentials for a NATS cluster, and the TLS settings to reach it.
type NATSAuth struct {
	CredsFile, User, Password, Token, NKeyFile string
	// TLSCA is a PEM file of the CAs that signed the servers' certificates (a private
	// CA); TLSCert and TLSKey a client certificate, for servers that verify clients.
	TLSCA, TLSCert, TLSKey string
}

// Configured reports whether any credential is set (in the fields or the URLs).
func (a NATSAuth) Configured(urls string) bool {
	return a.CredsFile != "" || a.User != "" || a.Token != "" || a.NKeyFile != "" || strings.Contains(urls, "@")
}

// Options are the nats.Options presenting a's credentials and TLS settings.
func (a NATSAuth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return nil, errors.New("nats tls: give both a client certificate and its key (--nats-tls-cert, --nats-tls-key)")
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	auth, err := a.authOptions()
	return append(opts, auth...), err
}

func (a NATSAuth) authOptions() ([]nats.Option, error) {
	switch {
	case a.CredsFile != "":
		return []nats.Option{nats.UserCredentials(a.CredsFile)}, nil
	case a.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey: %w", err)
		}
		return []nats.Option{o}, nil
	case a.User != "":
		return []nats.Option{nats.UserInfo(a.User, a.Password)}, nil
	case a.Token != "":
		return []nats.Option{nats.Token(a.Token)}, nil
	}
	return nil, nil
}

// Inbox prefixes of each role's connections: replies and consumer deliveries to a role
// arrive under its own prefix, so that NATS permissions let a gateway read its own replies
// and not a host's (deploy/nats/permissions.conf).
const (
	InboxGateway = "_INBOX_hf_gateway"
	InboxObjects = "_INBOX_hf_objects"
	InboxStatus  = "_INBOX_hf_status"
)

// ConnectNATS connects to urls (comma-separated), retrying in the background when the
// cluster is not reachable yet and logging every disconnect and reconnect. Replies come to
// inboxes under inbox (one of the Inbox constants).
func ConnectNATS(urls, name, inbox string, auth NATSAuth, log *slog.Logger) (*nats.Conn, error) {
	log = log.With("nats_conn", name)
	opts := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(inbox),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted()) }),
		// Asynchronous errors (a permissions violation, a slow consumer) in the log, not on
		// stderr as nats.go prints them by default.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("NATS error", "subject", sub.Subject, "err", err)
				return
			}
			log.Error("NATS error", "err", err)
		}),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted()) }),
	}
	ao, err := auth.Options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, ao...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if !nc.IsConnected() {
		log.Warn("NATS not reachable yet; retrying with backoff", "urls", urls)
	}
	return nc, nil
}

// Listen opens a TCP listener, saying clearly what is wrong when it cannot.
func Listen(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// NewServer wraps h in an http.Server with timeouts that bound slow clients.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Shutdown drains srv within ctx.
func Shutdown(ctx context.Context, srv *http.Server) {
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}
