package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// errorsOf splits what Parse returned into its *Error parts.
func errorsOf(t *testing.T, err error) []*Error {
	t.Helper()
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	out := make([]*Error, len(parts))
	for i, p := range parts {
		var e *Error
		if !errors.As(p, &e) {
			t.Fatalf("error %d is %T, not *Error: %v", i, p, p)
		}
		out[i] = e
	}
	return out
}

func TestErrors(t *testing.T) {
	const minimal = "[[durable_objects.bindings]]\nname = \"ROOMS\"\nclass_name = \"ChatRoom\"\n"
	type want struct{ at, msg string } // at is "file:line" or "file:line:col"
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"unknown top-level key", "name = \"chat\"\n\n\n\n\n\nrouts = []\n",
			[]want{{"holdfast.toml:7:1", `unknown key "routs" (did you mean "routes"?)`}}},
		{"unknown key in table", "[objects]\nlease_tt = \"2s\"\n",
			[]want{{"holdfast.toml:2:1", `unknown key "lease_tt" in objects (did you mean "lease_ttl"?)`}}},
		{"unknown key in array of tables", minimal + "[[routes]]\npattern = \"/r/{name}\"\nobjetc = \"ROOMS\"\n",
			[]want{{"holdfast.toml:6:1", `unknown key "objetc" in routes[0] (did you mean "object"?)`}}},
		{"unknown key in inline table", "[durable_objects]\nbindings = [\n  {name = \"A\", class_name = \"A\"},\n  {name = \"B\", clas_name = \"B\"},\n]\n",
			[]want{
				{"holdfast.toml:4:16", `unknown key "clas_name" in durable_objects.bindings[1] (did you mean "class_name"?)`},
			}},
		{"unknown key in nested array of tables", "[[auth.s3]]\naccess_key = \"a\"\nsecret = \"b\"\n",
			[]want{{"holdfast.toml:3:1", `unknown key "secret" in auth.s3[0] (did you mean "secret_key"?)`}}},
		{"unknown key without a close match", "[dev]\nfoo = 1\n",
			[]want{{"holdfast.toml:2:1", `unknown key "foo" in dev`}}},
		{"bad duration", "\n\n\n\n\n\n\n\n\n\n[objects]\nlease_ttl =  \"2x\"\n",
			[]want{{"holdfast.toml:12:14", `objects.lease_ttl: "2x" is not a duration (want e.g. "2s", "500ms")`}}},
		{"duration of the wrong type", "[objects]\nidle_timeout = 60\n",
			[]want{{"holdfast.toml:2:16", `objects.idle_timeout: want a duration string like "2s" or "500ms", got integer 60`}}},
		{"negative duration", "[objects]\nrequest_timeout = \"-1s\"\n",
			[]want{{"holdfast.toml:2:19", `objects.request_timeout: -1s: want a positive duration`}}},
		{"lease ttl not whole seconds", "[objects]\nlease_ttl = \"1500ms\"\n",
			[]want{{"holdfast.toml:2:13", `objects.lease_ttl: 1.5s: want whole seconds, at least "1s"`}}},
		{"lease ttl under a second", "[objects]\nlease_ttl = \"500ms\"\n",
			[]want{{"holdfast.toml:2:13", `want whole seconds, at least "1s"`}}},
		{"syntax error", "name = \"chat\nx = 1\n",
			[]want{{"holdfast.toml:1:13", `basic strings cannot have new lines`}}},
		{"syntax error in header", "[objects\n",
			[]want{{"holdfast.toml:1:9", `expected ']' to close table name`}}},
		{"duplicate key", "name = \"a\"\nname = \"b\"\n",
			[]want{{"holdfast.toml:2:1", `key name is already defined`}}},
		{"string of the wrong type", "name = 3\n",
			[]want{{"holdfast.toml:1:8", `name: want a string, got integer 3`}}},
		{"table of the wrong type", "limits = 3\n",
			[]want{{"holdfast.toml:1:10", `limits: want a table, got integer 3`}}},
		{"var not a string", "[vars]\nPORT = 8080\n",
			[]want{{"holdfast.toml:2:8", `vars.PORT: want a string, got integer 8080`}}},
		{"bad size", "[limits]\nmax_body_bytes = \"1 XB\"\n",
			[]want{{"holdfast.toml:2:18", `limits.max_body_bytes: "1 XB" is not a byte size`}}},
		{"negative size", "[limits]\nmax_websocket_message_bytes = -5\n",
			[]want{{"holdfast.toml:2:31", `limits.max_websocket_message_bytes: -5: want a positive number`}}},
		{"zero limit", "[limits]\nmax_connections = 0\n",
			[]want{{"holdfast.toml:2:19", `limits.max_connections: 0: want a positive number`}}},
		{"size overflow", "[limits]\nmax_body_bytes = \"9000000TiB\"\n",
			[]want{{"holdfast.toml:2:18", `is not a byte size`}}},
		{"empty binding name", "[[durable_objects.bindings]]\nname = \"\"\nclass_name = \"A\"\n",
			[]want{{"holdfast.toml:2:8", `durable_objects.bindings[0].name: "": invalid name: empty`}}},
		{"missing binding name", "[[durable_objects.bindings]]\nclass_name = \"A\"\n",
			[]want{{"holdfast.toml:1:1", `durable_objects.bindings[0].name: "": invalid name: empty`}}},
		{"duplicate binding", minimal + "[[durable_objects.bindings]]\nname = \"ROOMS\"\nclass_name = \"Other\"\n",
			[]want{{"holdfast.toml:5:8", `durable_objects.bindings[1].name: duplicate binding "ROOMS" (first at line 2)`}}},
		{"binding shared by object and bucket", minimal + "[[r2_buckets]]\nbinding = \"ROOMS\"\nbucket_name = \"rooms\"\n",
			[]want{{"holdfast.toml:5:11", `r2_buckets[0].binding: duplicate binding "ROOMS" (first at line 2)`}}},
		{"class name with a slash", "[[durable_objects.bindings]]\nname = \"A\"\nclass_name = \"chat/Room\"\n",
			[]want{{"holdfast.toml:3:14", `durable_objects.bindings[0].class_name: "chat/Room" is not a class name`}}},
		{"bucket name uppercase", "[[r2_buckets]]\nbinding = \"F\"\nbucket_name = \"My_Files\"\n",
			[]want{{"holdfast.toml:3:15", `r2_buckets[0].bucket_name: "My_Files" is not a bucket name: want lowercase letters, digits and '-'`}}},
		{"bucket name too short", "[[r2_buckets]]\nbinding = \"F\"\nbucket_name = \"ab\"\n",
			[]want{{"holdfast.toml:3:15", `want 3 to 63 characters`}}},
		{"bucket name dash", "[[r2_buckets]]\nbinding = \"F\"\nbucket_name = \"-files\"\n",
			[]want{{"holdfast.toml:3:15", `must not start or end with '-'`}}},
		{"route with object and function", minimal + "[[routes]]\npattern = \"/r/{name}\"\nobject = \"ROOMS\"\nfunction = \"chat\"\n",
			[]want{{"holdfast.toml:4:1", `routes[0]: set only one of object and function`}}},
		{"route with neither", "[[routes]]\npattern = \"/r\"\n",
			[]want{{"holdfast.toml:1:1", `routes[0]: set object (an object binding) or function`}}},
		{"route to an undeclared object", minimal + "[[routes]]\npattern = \"/r/{name}\"\nobject = \"ROOM\"\n",
			[]want{{"holdfast.toml:6:10", `routes[0].object: no object binding "ROOM" (did you mean "ROOMS"?)`}}},
		{"route without wildcard", minimal + "[[routes]]\npattern = \"/r/{id}\"\nobject = \"ROOMS\"\n",
			[]want{{"holdfast.toml:5:11", `routes[0].pattern: "/r/{id}" has no {name} or {name...} wildcard`}}},
		{"route with wildcard and name", minimal + "[[routes]]\npattern = \"/r/{name}\"\nobject = \"ROOMS\"\nname = \"lobby\"\n",
			[]want{{"holdfast.toml:7:8", `routes[0].name: the pattern already takes the object name`}}},
		{"route with a bad fixed name", minimal + "[[routes]]\npattern = \"/lobby\"\nobject = \"ROOMS\"\nname = \"the lobby\"\n",
			[]want{{"holdfast.toml:7:8", `routes[0].name: "the lobby" is not an object name`}}},
		{"function route with a name", "[[routes]]\npattern = \"/api\"\nfunction = \"chat\"\nname = \"x\"\n",
			[]want{{"holdfast.toml:4:8", `routes[0].name: a fixed object name only applies to object routes`}}},
		{"bad pattern", "[[routes]]\npattern = \"/r/{name\"\nfunction = \"chat\"\n",
			[]want{{"holdfast.toml:2:11", `routes[0].pattern: "/r/{name" is not a valid pattern: parsing "/r/{name"`}}},
		{"empty pattern", "[[routes]]\npattern = \"\"\nfunction = \"chat\"\n",
			[]want{{"holdfast.toml:2:11", `routes[0].pattern: empty`}}},
		{"duplicate pattern", "[[routes]]\npattern = \"/api\"\nfunction = \"a\"\n[[routes]]\npattern = \"/api\"\nfunction = \"b\"\n",
			[]want{{"holdfast.toml:5:11", `routes[1].pattern: duplicate pattern "/api" (first at line 2)`}}},
		{"conflicting patterns", "routes = [\n  {pattern = \"/a/{x}\", function = \"a\"},\n  {pattern = \"/a/{y}\", function = \"b\"},\n]\n",
			[]want{{"holdfast.toml:3:14", `routes[1].pattern: "/a/{y}" conflicts with "/a/{x}" (first at line 2)`}}},
		{"retention pattern with > inside", "[[streams.retention]]\npattern = \"a/>/b\"\nmax_msgs = 1\n",
			[]want{{"holdfast.toml:2:11", `streams.retention[0].pattern: "a/>/b" is not a stream pattern: ">" may only be the last token`}}},
		{"retention pattern with a bad token", "[[streams.retention]]\npattern = \"a/b.c\"\nmax_msgs = 1\n",
			[]want{{"holdfast.toml:2:11", `token 2 "b.c"`}}},
		{"retention pattern empty token", "[[streams.retention]]\npattern = \"a//*\"\nmax_msgs = 1\n",
			[]want{{"holdfast.toml:2:11", `token 2 ""`}}},
		{"retention without limits", "[[streams.retention]]\npattern = \"a/*\"\n",
			[]want{{"holdfast.toml:1:1", `streams.retention[0]: set at least one of max_msgs, max_age and max_bytes`}}},
		{"retention negative", "[[streams.retention]]\npattern = \"a/*\"\nmax_msgs = -1\n",
			[]want{{"holdfast.toml:3:12", `streams.retention[0].max_msgs: -1: want a positive number`}}},
		{"duplicate retention", "[[streams.retention]]\npattern = \"a\"\nmax_msgs = 1\n[[streams.retention]]\npattern = \"a\"\nmax_age = \"1h\"\n",
			[]want{{"holdfast.toml:5:11", `streams.retention[1].pattern: duplicate pattern "a" (first at line 2)`}}},
		{"listen without port", "[dev]\nlisten = \"localhost\"\n",
			[]want{{"holdfast.toml:2:10", `dev.listen: "localhost" is not a listen address`}}},
		{"bad nats listen", "[dev]\nnats_listen = \"4222\"\n",
			[]want{{"holdfast.toml:2:15", `dev.nats_listen: "4222" is not a listen address`}}},
		{"origin with a path", "[auth]\nallowed_origins = [\"*\", \"https://x.example/\"]\n",
			[]want{{"holdfast.toml:2:25", `auth.allowed_origins[1]: "https://x.example/" is not an origin`}}},
		{"empty api key", "[auth]\napi_keys = [\"k\", \"\"]\n",
			[]want{{"holdfast.toml:2:18", `auth.api_keys[1]: empty API key`}}},
		{"duplicate access key", "[[auth.s3]]\naccess_key = \"a\"\nsecret_key = \"b\"\n[[auth.s3]]\naccess_key = \"a\"\nsecret_key = \"c\"\n",
			[]want{{"holdfast.toml:5:14", `auth.s3[1].access_key: duplicate access key (first at line 2)`}}},
		{"bad proxy header", "[auth]\ntrusted_proxy_header = \"X Forwarded\"\n",
			[]want{{"holdfast.toml:2:24", `auth.trusted_proxy_header: "X Forwarded" is not a header name`}}},
		{"all errors in file order", "[objects]\nlease_ttl = \"0s\"\n[limits]\nmax_connections = 0\n[dev]\nlistn = \"x\"\n",
			[]want{
				{"holdfast.toml:2:13", `objects.lease_ttl`},
				{"holdfast.toml:4:19", `limits.max_connections`},
				{"holdfast.toml:6:1", `unknown key "listn" in dev (did you mean "listen"?)`},
			}},
		{"count given as a byte size", "[limits]\nmax_connections = \"1KiB\"\n",
			[]want{{"holdfast.toml:2:19", `limits.max_connections: "1KiB" is not a count (want an integer without quotes or a unit`}}},
		{"count given as a float", "[limits]\nmax_sockets_per_object = 1.5\n",
			[]want{{"holdfast.toml:2:26", `limits.max_sockets_per_object: want a count (an integer, e.g. 20000), got float 1.5`}}},
		{"retention count given as a string", "[[streams.retention]]\npattern = \"a\"\nmax_msgs = \"10\"\n",
			[]want{{"holdfast.toml:3:12", `streams.retention[0].max_msgs: "10" is not a count`}}},
		{"sizes still take units", "[limits]\nmax_file_bytes = \"0\"\n",
			[]want{{"holdfast.toml:2:18", `limits.max_file_bytes: 0: want a positive number`}}},
		{"columns count runes", "vars = { \"é\" = 1 }\n",
			[]want{{"holdfast.toml:1:16", `vars."é": want a string, got integer 1`}}},
		{"syntax error columns count runes", "name = \"é\nx = 1\n",
			[]want{{"holdfast.toml:1:10", `basic strings cannot have new lines`}}},
		{"names report runes", "[[durable_objects.bindings]]\nname = \"Café\"\nclass_name = \"A\"\n",
			[]want{{"holdfast.toml:2:8", `invalid name: character 'é' at offset 3`}}},
		{"type error hides its consequences", "[[routes]]\npattern = 3\nfunction = \"f\"\n",
			[]want{{"holdfast.toml:2:11", `routes[0].pattern: want a string, got integer 3`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("holdfast.toml", []byte(tt.doc))
			if err == nil || c != nil {
				t.Fatalf("error %v, config %+v: a bad file must yield no config", err, c)
			}
			got := errorsOf(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				s := got[i].Error()
				if !strings.HasPrefix(s, w.at) || !strings.Contains(s, w.msg) {
					t.Errorf("error %d:\n got  %s\n want %s: ...%s...", i, s, w.at, w.msg)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if b, ok := c.Binding("COUNTER"); !ok || b.ClassName != "Counter" {
		t.Errorf("Binding(COUNTER) = %+v, %v", b, ok)
	}
	if _, ok := c.Binding("NOPE"); ok {
		t.Error("Binding(NOPE) found")
	}
	if b, ok := c.Bucket("FILES"); !ok || b.BucketName != "files" {
		t.Errorf("Bucket(FILES) = %+v, %v", b, ok)
	}
	if c.Objects.LeaseTTL != 2*time.Second || c.Limits.MaxBodyBytes != 1<<20 || c.Dev.Listen != "127.0.0.1:8787" || c.File != "" {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

// A file declares its own bindings, routes and buckets: Default()'s are not merged in.
func TestFileDoesNotInheritDefaultBindings(t *testing.T) {
	c, err := Parse("holdfast.toml", []byte("name = \"empty\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DurableObjects.Bindings)+len(c.Routes)+len(c.R2Buckets) != 0 {
		t.Errorf("file inherited defaults: %+v", c)
	}
	if c.Limits != Default().Limits || c.Objects != Default().Objects || c.Dev != Default().Dev {
		t.Errorf("field defaults not applied: %+v", c)
	}
	if c.File != "holdfast.toml" {
		t.Errorf("File = %q", c.File)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Routes = append(c.Routes, Route{Pattern: "/x/{name}", Object: "NOPE"})
	err := c.Validate()
	if err == nil || err.Error() != `routes[1].object: no object binding "NOPE" (declared: COUNTER)` {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512": 512, "0": 0, "1B": 1, "64KiB": 64 << 10, "1MiB": 1 << 20, "1MB": 1e6, "2 GiB": 2 << 30,
		"1kb": 1000, "3TiB": 3 << 40, " 7 ": 7,
	} {
		if got, ok := parseSize(in); !ok || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1 XB", "1MiBs", "99999999999999999999", "9000000TiB", "0x10"} {
		if got, ok := parseSize(in); ok {
			t.Errorf("parseSize(%q) = %d, want failure", in, got)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"name", "vars", "routes", "r2_buckets", "durable_objects", "limits"}
	for key, want := range map[string]string{
		"routs": "routes", "Routes": "routes", "nmae": "name", "r2_bucket": "r2_buckets",
		"durable_object": "durable_objects", "x": "", "limit": "limits", "totally_else": "",
		"durable": "durable_objects", "r2": "",
	} {
		if got := suggest(key, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

// Errorf places a check made outside the package (a class the binary lacks) where the
// file has the key.
func TestErrorf(t *testing.T) {
	c, err := Parse("holdfast.toml", []byte("name = \"x\"\n\n[[durable_objects.bindings]]\nname = \"ROOMS\"\nclass_name = \"Rooom\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Errorf("durable_objects.bindings[0].class_name", "class %q is not built into this binary", "Rooom").Error()
	if want := `holdfast.toml:5:14: durable_objects.bindings[0].class_name: class "Rooom" is not built into this binary`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := Default().Errorf("routes[0].object", "x").Error(); got != "built-in defaults: routes[0].object: x" {
		t.Errorf("without a file: %s", got)
	}
}
