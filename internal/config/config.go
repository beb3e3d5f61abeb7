package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is a resolved holdfast.toml: every key the file left out holds its default.
type Config struct {
	Name           string
	Vars           map[string]string
	DurableObjects DurableObjects
	R2Buckets      []Bucket
	Routes         []Route
	Dev            Dev
	Auth           Auth
	Limits         Limits
	Objects        Objects
	Streams        Streams
	// File is the path the config was loaded from, or the name given to Parse; "" for
	// Default().
	File string

	// pos locates each key of the file, so Validate can point at the offending line.
	pos index
}

// DurableObjects is the [durable_objects] table.
type DurableObjects struct {
	Bindings []ObjectBinding
}

// ObjectBinding makes the object class ClassName reachable as Name.
type ObjectBinding struct {
	Name, ClassName string
}

// Bucket makes the file bucket BucketName reachable as Binding.
type Bucket struct {
	Binding, BucketName string
}

// Route sends requests matching Pattern to an object or a function.
type Route struct {
	// Pattern is a net/http ServeMux pattern, e.g. "/counter/{name}" or "POST /api/room".
	Pattern string
	// Object is an object binding name; the object name comes from the {name} or {name...}
	// wildcard, or from Name.
	Object string
	// Function is a registered function's name.
	Function string
	// Name is a fixed object name, for routes that always reach the same object.
	Name string
}

// Dev holds the listen addresses and storage directory of `holdfast dev`.
type Dev struct {
	Listen, PersistTo, NATSListen, S3Listen string
}

// Auth says who may call the gateway and the S3 endpoint.
type Auth struct {
	APIKeys []string
	// AllowedOrigins lists the origins allowed cross-origin requests; "*" allows any and
	// must be written out.
	AllowedOrigins []string
	S3             []S3Credential
	// TrustedProxyHeader names the header carrying the client address set by a trusted
	// proxy, e.g. "X-Forwarded-For"; "" trusts no header.
	TrustedProxyHeader string
}

// S3Credential is one access key pair of the S3 endpoint.
type S3Credential struct {
	AccessKey, SecretKey string
}

// Limits bound what one client or object may consume.
type Limits struct {
	MaxBodyBytes             int64
	MaxWebSocketMessageBytes int64
	MaxAttachmentBytes       int
	MaxSocketsPerObject      int
	MaxConnections           int
	MaxStorageValueBytes     int
	// MaxFileBytes bounds one file however it is uploaded: /v1/files, /r2, S3 (a PUT, a
	// part, a completed multipart upload), a function's bucket binding.
	MaxFileBytes int64
}

// Objects tunes the object runtime.
type Objects struct {
	// LeaseTTL is how long an owner's lease outlives its last renewal. Whole seconds, because
	// NATS per-message TTLs are.
	LeaseTTL       time.Duration
	IdleTimeout    time.Duration
	RequestTimeout time.Duration
}

// Streams is the [streams] table.
type Streams struct {
	Retention []Retention
	// LongPollTimeout bounds a Durable Streams long-poll read (flag --long-poll-timeout);
	// zero is the gateway's default (30 s).
	LongPollTimeout time.Duration
	// WebhookAllowLocalhost admits subscription webhooks on http://localhost and
	// http://127.x.x.x; `holdfast dev` sets it.
	WebhookAllowLocalhost bool
	// PublicURL (public_url) is where clients reach the cluster, scheme://host[/prefix]:
	// subscription callback and JWKS URLs start with it. Empty: the request's own.
	PublicURL string
}

// Retention limits the streams whose names match Pattern. A zero limit is no limit.
type Retention struct {
	// Pattern is a stream name pattern: tokens separated by "/", where "*" matches one token
	// and a last token ">" matches one or more.
	Pattern  string
	MaxMsgs  int64
	MaxAge   time.Duration
	MaxBytes int64
}

// Defaults of the keys a file leaves out.
const (
	DefaultListen                   = "127.0.0.1:8787"
	DefaultPersistTo                = ".holdfast"
	DefaultS3Listen                 = "127.0.0.1:8788"
	DefaultMaxBodyBytes             = 1 << 20
	DefaultMaxWebSocketMessageBytes = 64 << 10
	DefaultMaxAttachmentBytes       = 2048
	DefaultMaxSocketsPerObject      = 10000
	DefaultMaxConnections           = 100000
	DefaultMaxStorageValueBytes     = 128 << 10
	DefaultMaxFileBytes             = 5 << 30 // S3's largest single PUT
	DefaultLeaseTTL                 = 2 * time.Second
	DefaultIdleTimeout              = 60 * time.Second
	DefaultRequestTimeout           = 30 * time.Second
)

// base holds the defaults every file starts from.
func base() *Config {
	return &Config{
		Vars: map[string]string{},
		Dev:  Dev{Listen: DefaultListen, PersistTo: DefaultPersistTo, S3Listen: DefaultS3Listen},
		Limits: Limits{
			MaxBodyBytes:             DefaultMaxBodyBytes,
			MaxWebSocketMessageBytes: DefaultMaxWebSocketMessageBytes,
			MaxAttachmentBytes:       DefaultMaxAttachmentBytes,
			MaxSocketsPerObject:      DefaultMaxSocketsPerObject,
			MaxConnections:           DefaultMaxConnections,
			MaxStorageValueBytes:     DefaultMaxStorageValueBytes,
			MaxFileBytes:             DefaultMaxFileBytes,
		},
		Objects: Objects{
			LeaseTTL:       DefaultLeaseTTL,
			IdleTimeout:    DefaultIdleTimeout,
			RequestTimeout: DefaultRequestTimeout,
		},
	}
}

// Default is the config used when there is no file: the field defaults plus a COUNTER object
// routed at /counter/{name} and a FILES bucket, so `holdfast dev` serves something at once.
func Default() *Config {
	c := base()
	c.DurableObjects.Bindings = []ObjectBinding{{Name: "COUNTER", ClassName: "Counter"}}
	c.Routes = []Route{{Pattern: "/counter/{name}", Object: "COUNTER"}}
	c.R2Buckets = []Bucket{{Binding: "FILES", BucketName: "files"}}
	return c
}

// Load reads the file at path and returns it resolved and validated. A missing file yields
// an error matching fs.ErrNotExist; the caller decides whether Default() replaces it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes data, fills in defaults and validates the result. name is the file name
// errors report. The error joins one *Error per problem found, in file order.
func Parse(name string, data []byte) (*Config, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			return nil, &Error{File: name, Line: line, Col: runeColumn(data, line, col), Msg: trimTOML(de.Error())}
		}
		return nil, &Error{File: name, Msg: trimTOML(err.Error())}
	}
	c := base()
	c.File = name
	c.pos = buildIndex(data)
	d := decoder{c: c}
	d.root(doc)
	errs := d.errs
	for _, e := range c.validate() {
		if !d.consequence(e.path) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, c.join(errs)
	}
	return c, nil
}

// Validate checks c as Parse does, for configs built in code or changed after loading.
func (c *Config) Validate() error {
	if errs := c.validate(); len(errs) > 0 {
		return c.join(errs)
	}
	return nil
}

// Binding returns the object binding called name.
func (c *Config) Binding(name string) (ObjectBinding, bool) {
	for _, b := range c.DurableObjects.Bindings {
		if b.Name == name {
			return b, true
		}
	}
	return ObjectBinding{}, false
}

// Bucket returns the bucket bound as binding.
func (c *Config) Bucket(binding string) (Bucket, bool) {
	for _, b := range c.R2Buckets {
		if b.Binding == binding {
			return b, true
		}
	}
	return Bucket{}, false
}

// Errorf is an *Error about the key at path ("durable_objects.bindings[0].class_name",
// as messages show paths), placed where the file has it: for checks made outside this
// package, such as whether a class is built into the binary. Without a file (Default) it
// names "built-in defaults".
func (c *Config) Errorf(path, format string, args ...any) error {
	at := c.pos.find(path, false)
	file := c.File
	if file == "" {
		file = "built-in defaults"
	}
	return &Error{File: file, Line: at.line, Col: at.col, Msg: path + ": " + fmt.Sprintf(format, args...)}
}

// Error is one problem in a config file. Line and Col are 1-based, Col counted in
// characters (runes, as editors count them); 0 means unknown.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// problem is an Error before it is placed: path is the key it is about, atKey says whether
// to point at the key rather than its value.
type problem struct {
	path  string
	atKey bool
	msg   string
}

// join places the problems in the file and joins them in file order.
func (c *Config) join(ps []problem) error {
	es := make([]*Error, len(ps))
	for i, p := range ps {
		at := c.pos.find(p.path, p.atKey)
		es[i] = &Error{File: c.File, Line: at.line, Col: at.col, Msg: p.msg}
	}
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func trimTOML(msg string) string { return strings.TrimPrefix(msg, "toml: ") }
