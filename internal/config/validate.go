package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/names"
)

// validator collects the problems of a decoded config.
type validator struct {
	c    *Config
	errs []problem
}

func (v *validator) fail(path string, format string, args ...any) {
	v.errs = append(v.errs, problem{path: path, msg: path + ": " + fmt.Sprintf(format, args...)})
}

// line says where path is, for messages that point back at an earlier key.
func (v *validator) line(path string) string {
	if p := v.c.pos.find(path, true); p.line > 0 {
		return fmt.Sprintf(" (first at line %d)", p.line)
	}
	return ""
}

func (c *Config) validate() []problem {
	v := &validator{c: c}
	if c.Name != "" {
		v.token("name", c.Name)
	}
	for k := range c.Vars {
		if k == "" {
			v.fail("vars", "a var name is empty")
		}
	}
	v.bindings()
	v.routes()
	v.dev()
	v.auth()
	v.limits()
	v.objects()
	v.retention()
	return v.errs
}

func (v *validator) token(path, s string) bool {
	if err := names.ValidateClass(s); err != nil {
		v.fail(path, "%q: %v", s, err)
		return false
	}
	return true
}

// bindings checks object and bucket bindings. They share one namespace so that a binding
// name says unambiguously what it is.
func (v *validator) bindings() {
	seen := map[string]string{}
	unique := func(path, name string) {
		if !v.token(path, name) {
			return
		}
		if first, ok := seen[name]; ok {
			v.fail(path, "duplicate binding %q%s", name, v.line(first))
			return
		}
		seen[name] = path
	}
	for i, b := range v.c.DurableObjects.Bindings {
		p := elem("durable_objects.bindings", i)
		unique(join(p, "name"), b.Name)
		if err := names.ValidateClass(b.ClassName); err != nil {
			v.fail(join(p, "class_name"), "%q is not a class name: %v", b.ClassName, err)
		}
	}
	for i, b := range v.c.R2Buckets {
		p := elem("r2_buckets", i)
		unique(join(p, "binding"), b.Binding)
		if msg := bucketName(b.BucketName); msg != "" {
			v.fail(join(p, "bucket_name"), "%q is not a bucket name: %s", b.BucketName, msg)
		}
	}
}

// bucketName returns what is wrong with an S3 bucket name, or "".
func bucketName(s string) string {
	if len(s) < 3 || len(s) > 63 {
		return "want 3 to 63 characters"
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "want lowercase letters, digits and '-'"
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "must not start or end with '-'"
	}
	return ""
}

func (v *validator) routes() {
	seen := map[string]string{}
	var valid []int // routes whose pattern registers on its own, checked for conflicts
	for i, r := range v.c.Routes {
		p := elem("routes", i)
		pp := join(p, "pattern")
		ok := false
		switch first, dup := seen[r.Pattern]; {
		case r.Pattern == "":
			v.fail(pp, "empty (want a ServeMux pattern like \"/counter/{name}\" or \"POST /api/room\")")
		case dup:
			v.fail(pp, "duplicate pattern %q%s", r.Pattern, v.line(first))
		default:
			seen[r.Pattern] = pp
			if err := register(r.Pattern); err != nil {
				v.fail(pp, "%q is not a valid pattern: %v", r.Pattern, err)
			} else {
				for _, j := range valid {
					if register(v.c.Routes[j].Pattern, r.Pattern) != nil {
						v.fail(pp, "%q conflicts with %q%s: both match some requests and neither is more specific",
							r.Pattern, v.c.Routes[j].Pattern, v.line(join(elem("routes", j), "pattern")))
						break
					}
				}
				valid = append(valid, i)
				ok = true
			}
		}
		switch {
		case r.Object == "" && r.Function == "":
			v.fail(p, "set object (an object binding) or function (a function name)")
		case r.Object != "" && r.Function != "":
			v.fail(p, "set only one of object and function")
		case r.Function != "":
			if strings.TrimSpace(r.Function) != r.Function {
				v.fail(join(p, "function"), "%q has leading or trailing space", r.Function)
			}
			if r.Name != "" {
				v.fail(join(p, "name"), "a fixed object name only applies to object routes")
			}
		default:
			v.objectRoute(p, r, ok)
		}
	}
}

// objectRoute checks a route to an object; validPattern says whether its pattern is worth
// looking into for a wildcard.
func (v *validator) objectRoute(p string, r Route, validPattern bool) {
	if _, ok := v.c.Binding(r.Object); !ok {
		declared := make([]string, len(v.c.DurableObjects.Bindings))
		for i, b := range v.c.DurableObjects.Bindings {
			declared[i] = b.Name
		}
		hint := " (no object bindings are declared in [[durable_objects.bindings]])"
		if s := suggest(r.Object, declared); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		} else if len(declared) > 0 {
			hint = fmt.Sprintf(" (declared: %s)", strings.Join(declared, ", "))
		}
		v.fail(join(p, "object"), "no object binding %q%s", r.Object, hint)
	}
	wildcard := strings.Contains(r.Pattern, "{name}") || strings.Contains(r.Pattern, "{name...}")
	switch {
	case r.Name != "" && wildcard:
		v.fail(join(p, "name"), "the pattern already takes the object name from {name}; drop one")
	case r.Name != "":
		if err := names.Validate(r.Name); err != nil {
			v.fail(join(p, "name"), "%q is not an object name: %v", r.Name, err)
		}
	case !wildcard && validPattern:
		v.fail(join(p, "pattern"), "%q has no {name} or {name...} wildcard to name the object; add one or set name", r.Pattern)
	}
}

// register reports whether patterns can all be registered on one ServeMux, which panics
// on a bad or conflicting pattern.
func register(patterns ...string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux := http.NewServeMux()
	for _, p := range patterns {
		mux.Handle(p, http.NotFoundHandler())
	}
	return nil
}

func (v *validator) dev() {
	d := v.c.Dev
	v.addr("dev.listen", d.Listen, false)
	v.addr("dev.nats_listen", d.NATSListen, true)
	v.addr("dev.s3_listen", d.S3Listen, false)
	if d.PersistTo == "" {
		v.fail("dev.persist_to", "empty (want a directory)")
	}
}

func (v *validator) addr(path, s string, optional bool) {
	if s == "" && optional {
		return
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		v.fail(path, "%q is not a listen address: %v (want host:port, e.g. \"127.0.0.1:8787\" or \":8787\")", s, err)
	}
}

func (v *validator) auth() {
	a := v.c.Auth
	for i, k := range a.APIKeys {
		if k == "" {
			v.fail(elem("auth.api_keys", i), "empty API key")
		}
	}
	for i, o := range a.AllowedOrigins {
		if o != "*" && !isOrigin(o) {
			v.fail(elem("auth.allowed_origins", i), "%q is not an origin (want scheme://host[:port] without a path, e.g. \"https://example.com\", or \"*\")", o)
		}
	}
	seen := map[string]string{}
	for i, s := range a.S3 {
		p := elem("auth.s3", i)
		switch first, dup := seen[s.AccessKey]; {
		case s.AccessKey == "":
			v.fail(join(p, "access_key"), "empty")
		case dup:
			v.fail(join(p, "access_key"), "duplicate access key%s", v.line(first))
		default:
			seen[s.AccessKey] = join(p, "access_key")
		}
		if s.SecretKey == "" {
			v.fail(join(p, "secret_key"), "empty")
		}
	}
	if h := a.TrustedProxyHeader; h != "" && !isToken(h) {
		v.fail("auth.trusted_proxy_header", "%q is not a header name", h)
	}
}

// isOrigin reports whether s is what browsers send in Origin: it is compared as a string,
// so a trailing slash or a path would never match.
func isOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery &&
		u.Scheme+"://"+u.Host == s
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names are.
func isToken(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func (v *validator) limits() {
	l := v.c.Limits
	for _, f := range []struct {
		path string
		n    int64
	}{
		{"limits.max_body_bytes", l.MaxBodyBytes},
		{"limits.max_websocket_message_bytes", l.MaxWebSocketMessageBytes},
		{"limits.max_attachment_bytes", int64(l.MaxAttachmentBytes)},
		{"limits.max_sockets_per_object", int64(l.MaxSocketsPerObject)},
		{"limits.max_connections", int64(l.MaxConnections)},
		{"limits.max_storage_value_bytes", int64(l.MaxStorageValueBytes)},
		{"limits.max_file_bytes", l.MaxFileBytes},
	} {
		if f.n <= 0 {
			v.fail(f.path, "%d: want a positive number", f.n)
		}
	}
}

func (v *validator) objects() {
	o := v.c.Objects
	if o.LeaseTTL < time.Second || o.LeaseTTL%time.Second != 0 {
		v.fail("objects.lease_ttl", "%v: want whole seconds, at least \"1s\" (NATS message TTLs are whole seconds)", o.LeaseTTL)
	}
	if o.IdleTimeout <= 0 {
		v.fail("objects.idle_timeout", "%v: want a positive duration", o.IdleTimeout)
	}
	if o.RequestTimeout <= 0 {
		v.fail("objects.request_timeout", "%v: want a positive duration", o.RequestTimeout)
	}
}

func (v *validator) retention() {
	if u := v.c.Streams.PublicURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" && pu.Scheme != "http" || pu.Host == "" || pu.User != nil ||
			pu.RawQuery != "" || pu.Fragment != "" || strings.HasSuffix(u, "/") {
			v.fail("streams.public_url", "%q: want scheme://host[:port][/prefix] without a trailing slash, e.g. \"https://api.example.com\"", u)
		}
	}
	seen := map[string]string{}
	for i, r := range v.c.Streams.Retention {
		p := elem("streams.retention", i)
		pp := join(p, "pattern")
		if msg := streamPattern(r.Pattern); msg != "" {
			v.fail(pp, "%q is not a stream pattern: %s", r.Pattern, msg)
		} else if first, dup := seen[r.Pattern]; dup {
			v.fail(pp, "duplicate pattern %q%s", r.Pattern, v.line(first))
		} else {
			seen[r.Pattern] = pp
		}
		if r.MaxMsgs < 0 {
			v.fail(join(p, "max_msgs"), "%d: want a positive number, or 0 for no limit", r.MaxMsgs)
		}
		if r.MaxAge < 0 {
			v.fail(join(p, "max_age"), "%v: want a positive duration, or \"0s\" for no limit", r.MaxAge)
		}
		if r.MaxBytes < 0 {
			v.fail(join(p, "max_bytes"), "%d: want a positive size, or 0 for no limit", r.MaxBytes)
		}
		if r.MaxMsgs == 0 && r.MaxAge == 0 && r.MaxBytes == 0 {
			v.fail(p, "set at least one of max_msgs, max_age and max_bytes")
		}
	}
}

// streamPattern returns what is wrong with a retention pattern, or "".
func streamPattern(s string) string {
	if s == "" {
		return "empty (want e.g. \"chat/*\" or \"logs/>\")"
	}
	tokens := strings.Split(s, "/")
	if len(s) > names.MaxNameLen || len(tokens) > names.MaxTokens {
		return fmt.Sprintf("longer than a stream name can be (%d bytes, %d tokens)", names.MaxNameLen, names.MaxTokens)
	}
	for i, t := range tokens {
		switch {
		case t == "*":
		case t == ">":
			if i != len(tokens)-1 {
				return "\">\" may only be the last token"
			}
		default:
			if err := names.ValidateClass(t); err != nil {
				return fmt.Sprintf("token %d %q: %v (want a name token, \"*\" or a last \">\")", i+1, t, err)
			}
		}
	}
	return ""
}
