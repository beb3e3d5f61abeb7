// Package config owns holdfast.toml: its format, its defaults, and the errors a user sees
// when the file is wrong. Load and Parse read a file into a Config with every default
// filled in; Default is the Config used when there is no file.
//
// Every error names the file, line and column of the key or value at fault and says what
// was expected, and Parse reports all the problems it finds at once, in file order:
//
//	holdfast.toml:7:1: unknown key "routs" (did you mean "routes"?)
//	holdfast.toml:12:14: objects.lease_ttl: "2x" is not a duration (want e.g. "2s", "500ms")
//
// Each is an *Error, which errors.As finds in what Parse returns.
//
// # Format
//
// Every key is optional. Unknown keys are errors. Durations are strings such as "500ms",
// "2s" or "5m" (Go's time.ParseDuration). Byte sizes are an integer number of bytes or a
// string with a unit: "512", "64KiB", "1MiB", "1GiB" (powers of 1024) or "1KB", "1MB",
// "1GB" (powers of 1000); units are case-insensitive. Counts (max_connections,
// max_sockets_per_object, max_msgs) are plain integers, never sizes: "1KiB" is an error.
//
// Names of bindings, classes and the app are one token of letters, digits, '_' and '-'.
//
//	name = "chat"                  # the app's name; default ""
//
//	[vars]                         # plain string values functions read with Env.Var
//	GREETING = "hello"             # values must be strings: quote numbers
//
//	[durable_objects]
//	bindings = [                   # object classes, each reachable under a binding name
//	  { name = "ROOMS", class_name = "ChatRoom" },
//	]
//
//	[[r2_buckets]]                 # file buckets, also served over S3
//	binding = "UPLOADS"            # binding name, unique among all bindings
//	bucket_name = "chat-uploads"   # 3-63 of a-z, 0-9 and '-', not starting or ending with '-'
//
//	[[routes]]                     # requests the gateway sends to a function or an object
//	pattern = "POST /api/room"     # a net/http ServeMux pattern: [METHOD ][HOST]/PATH
//	function = "chat"              # a registered function's name
//
//	[[routes]]
//	pattern = "/room/{name}"       # {name} or {name...} supplies the object name ...
//	object = "ROOMS"               # an object binding
//
//	[[routes]]
//	pattern = "/lobby"
//	object = "ROOMS"
//	name = "lobby"                 # ... or name fixes it
//
//	[dev]                          # holdfast dev
//	listen = "127.0.0.1:8787"      # HTTP gateway; default "127.0.0.1:8787"
//	persist_to = ".holdfast"       # data directory; default ".holdfast"
//	nats_listen = ""               # NATS clients, e.g. "127.0.0.1:4222"; default "" (off)
//	s3_listen = "127.0.0.1:8788"   # S3 endpoint; default "127.0.0.1:8788"
//
//	[auth]
//	api_keys = ["k-2f9c1e"]                        # default none
//	allowed_origins = ["https://chat.example.com"] # CORS and WebSocket origins; "*" allows all; default none
//	trusted_proxy_header = "CF-Connecting-IP"      # client address set by your proxy; default none
//
//	[[auth.s3]]                    # S3 access key pairs
//	access_key = "chatadmin"
//	secret_key = "change-me"
//
//	[limits]
//	max_body_bytes = "1MiB"               # body sent to an object or function; default 1MiB
//	max_websocket_message_bytes = "64KiB" # default 64KiB
//	max_attachment_bytes = 2048           # per WebSocket attachment; default 2048
//	max_sockets_per_object = 10000        # default 10000
//	max_connections = 100000              # per gateway; default 100000
//	max_storage_value_bytes = "128KiB"    # one stored value; default 128KiB
//	max_file_bytes = "5GiB"               # one file, however uploaded; default 5GiB
//
//	[objects]
//	lease_ttl = "2s"               # whole seconds, at least 1s; default "2s"
//	idle_timeout = "60s"           # an idle object is deactivated after this; default "60s"
//	request_timeout = "30s"        # default "30s"
//
//	[streams]
//	public_url = "https://api.example.com" # subscription callback/JWKS URLs; default: the request's
//
//	[[streams.retention]]          # limits for streams whose names match pattern
//	pattern = "room/*"             # tokens split by '/'; "*" is one token, a last ">" the rest
//	max_msgs = 10000               # 0 or absent: no limit; set at least one of the three
//	max_age = "168h"
//	max_bytes = "1GiB"
//
// # Rules
//
// A route sets exactly one of object and function. An object route's object must be a
// declared binding, and the object name comes either from a {name} or {name...} wildcard in
// the pattern or from name, not both. Patterns must be valid ServeMux patterns, distinct, and
// must not conflict (two patterns that match some request with neither more specific). Binding
// names are unique across objects and buckets; S3 access keys and retention patterns are
// unique. Listen addresses are host:port. Allowed origins are "*" or exactly what browsers
// send: scheme://host[:port], without a path or trailing slash. Limits and timeouts are
// positive.
//
// # Defaults
//
// A file starts from the defaults above, with no bindings, buckets or routes of its own.
// Default, used when there is no file, adds an object binding COUNTER of class Counter routed
// at /counter/{name} and a bucket FILES named "files".
package config
