package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// decoder turns the generic document toml.Unmarshal produced into a Config, checking keys
// and value types itself so that every message names the key path and the place.
type decoder struct {
	c    *Config
	errs []problem
	// mistyped holds the paths of values of the wrong type; misspelt the paths of the keys
	// suggested for unknown ones, and of the tables holding them.
	mistyped, misspelt []string
}

// mistype reports a value at path of the wrong type or form.
func (d *decoder) mistype(path string, format string, args ...any) {
	d.errs = append(d.errs, problem{path: path, msg: fmt.Sprintf(format, args...)})
	d.mistyped = append(d.mistyped, path)
}

// consequence reports whether a validation problem at path may just follow from a decode
// problem, so that it is left out rather than reported twice: a value of the wrong type
// reads as empty, and a misspelt key leaves the key it was meant to be unset.
func (d *decoder) consequence(path string) bool {
	for _, p := range d.mistyped {
		if within(p, path) || within(path, p) {
			return true
		}
	}
	return slices.Contains(d.misspelt, path)
}

// within reports whether path is outer or inside it.
func within(path, outer string) bool {
	if !strings.HasPrefix(path, outer) {
		return false
	}
	rest := path[len(outer):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// field decodes the value of one key found at path.
type field func(path string, v any)

// table decodes a table whose keys are those of fields, in sorted order so errors and
// results do not depend on map order. Other keys are reported, with the closest known key.
func (d *decoder) table(path string, v any, fields map[string]field) {
	m, ok := v.(map[string]any)
	if !ok {
		d.mistype(path, "%s: want a table, got %s", path, describe(v))
		return
	}
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		if f, ok := fields[k]; ok {
			f(p, m[k])
			continue
		}
		msg := fmt.Sprintf("unknown key %q", k)
		if path != "" {
			msg += " in " + path
		}
		if s := suggest(k, sortedKeys(fields)); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
			d.misspelt = append(d.misspelt, path, join(path, s))
		}
		d.errs = append(d.errs, problem{path: p, atKey: true, msg: msg})
	}
}

// list decodes an array (or array of tables), calling each for every element.
func (d *decoder) list(path string, v any, each field) {
	a, ok := v.([]any)
	if !ok {
		d.mistype(path, "%s: want an array, got %s", path, describe(v))
		return
	}
	for i, e := range a {
		each(elem(path, i), e)
	}
}

func (d *decoder) str(dst *string) field {
	return func(path string, v any) {
		s, ok := v.(string)
		if !ok {
			d.mistype(path, "%s: want a string, got %s", path, describe(v))
			return
		}
		*dst = s
	}
}

func (d *decoder) strs(dst *[]string) field {
	return func(path string, v any) {
		*dst = []string{}
		d.list(path, v, func(path string, v any) {
			var s string
			d.str(&s)(path, v)
			*dst = append(*dst, s)
		})
	}
}

// count decodes a count of things (connections, sockets, messages): a TOML integer, never
// a byte size, so "1KiB" is a mistake to report rather than 1024 of something.
func (d *decoder) count(dst *int64) field {
	return func(path string, v any) {
		switch v := v.(type) {
		case int64:
			*dst = v
		case string:
			d.mistype(path, "%s: %q is not a count (want an integer without quotes or a unit, e.g. 20000)", path, v)
		default:
			d.mistype(path, "%s: want a count (an integer, e.g. 20000), got %s", path, describe(v))
		}
	}
}

func (d *decoder) duration(dst *time.Duration) field {
	return func(path string, v any) {
		s, ok := v.(string)
		if !ok {
			d.mistype(path, `%s: want a duration string like "2s" or "500ms", got %s`, path, describe(v))
			return
		}
		t, err := time.ParseDuration(s)
		if err != nil {
			d.mistype(path, `%s: %q is not a duration (want e.g. "2s", "500ms")`, path, s)
			return
		}
		*dst = t
	}
}

func (d *decoder) size(dst *int64) field {
	return func(path string, v any) {
		switch v := v.(type) {
		case int64:
			*dst = v
		case string:
			n, ok := parseSize(v)
			if !ok {
				d.mistype(path, `%s: %q is not a byte size (want an integer or e.g. "512", "64KiB", "1MiB", "1MB")`, path, v)
				return
			}
			*dst = n
		default:
			d.mistype(path, `%s: want a byte size (an integer or e.g. "64KiB"), got %s`, path, describe(v))
		}
	}
}

// narrow decodes an int field with an int64 decoder (count or size).
func (d *decoder) narrow(dst *int, wide func(*int64) field) field {
	return func(path string, v any) {
		n := int64(*dst)
		wide(&n)(path, v)
		if int64(int(n)) != n {
			d.mistype(path, "%s: %d is too large", path, n)
			return
		}
		*dst = int(n)
	}
}

var units = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize reads a non-negative integer followed by an optional unit, e.g. "64KiB". Units
// are case-insensitive; KB is 1000 bytes and KiB 1024.
func parseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	unit, ok := units[strings.ToLower(strings.TrimLeftFunc(s[i:], unicode.IsSpace))]
	if !ok || n > math.MaxInt64/unit {
		return 0, false
	}
	return n * unit, true
}

// describe names a decoded TOML value's type, and shows scalars.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("date/time %v", v)
	}
}

func (d *decoder) root(doc map[string]any) {
	c := d.c
	d.table("", doc, map[string]field{
		"name": d.str(&c.Name),
		"vars": func(path string, v any) {
			m, ok := v.(map[string]any)
			if !ok {
				d.mistype(path, "%s: want a table, got %s", path, describe(v))
				return
			}
			for _, k := range sortedKeys(m) {
				s, ok := m[k].(string)
				if !ok {
					d.mistype(join(path, k), "%s: want a string, got %s (vars are strings: quote it)", join(path, k), describe(m[k]))
					continue
				}
				c.Vars[k] = s
			}
		},
		"durable_objects": func(path string, v any) {
			d.table(path, v, map[string]field{
				"bindings": func(path string, v any) {
					c.DurableObjects.Bindings = []ObjectBinding{}
					d.list(path, v, func(path string, v any) {
						var b ObjectBinding
						d.table(path, v, map[string]field{"name": d.str(&b.Name), "class_name": d.str(&b.ClassName)})
						c.DurableObjects.Bindings = append(c.DurableObjects.Bindings, b)
					})
				},
			})
		},
		"r2_buckets": func(path string, v any) {
			c.R2Buckets = []Bucket{}
			d.list(path, v, func(path string, v any) {
				var b Bucket
				d.table(path, v, map[string]field{"binding": d.str(&b.Binding), "bucket_name": d.str(&b.BucketName)})
				c.R2Buckets = append(c.R2Buckets, b)
			})
		},
		"routes": func(path string, v any) {
			c.Routes = []Route{}
			d.list(path, v, func(path string, v any) {
				var r Route
				d.table(path, v, map[string]field{
					"pattern":  d.str(&r.Pattern),
					"object":   d.str(&r.Object),
					"function": d.str(&r.Function),
					"name":     d.str(&r.Name),
				})
				c.Routes = append(c.Routes, r)
			})
		},
		"dev": func(path string, v any) {
			d.table(path, v, map[string]field{
				"listen":      d.str(&c.Dev.Listen),
				"persist_to":  d.str(&c.Dev.PersistTo),
				"nats_listen": d.str(&c.Dev.NATSListen),
				"s3_listen":   d.str(&c.Dev.S3Listen),
			})
		},
		"auth": func(path string, v any) {
			a := &c.Auth
			d.table(path, v, map[string]field{
				"api_keys":        d.strs(&a.APIKeys),
				"allowed_origins": d.strs(&a.AllowedOrigins),
				"s3": func(path string, v any) {
					a.S3 = []S3Credential{}
					d.list(path, v, func(path string, v any) {
						var s S3Credential
						d.table(path, v, map[string]field{"access_key": d.str(&s.AccessKey), "secret_key": d.str(&s.SecretKey)})
						a.S3 = append(a.S3, s)
					})
				},
				"trusted_proxy_header": d.str(&a.TrustedProxyHeader),
			})
		},
		"limits": func(path string, v any) {
			l := &c.Limits
			d.table(path, v, map[string]field{
				"max_body_bytes":              d.size(&l.MaxBodyBytes),
				"max_websocket_message_bytes": d.size(&l.MaxWebSocketMessageBytes),
				"max_attachment_bytes":        d.narrow(&l.MaxAttachmentBytes, d.size),
				"max_sockets_per_object":      d.narrow(&l.MaxSocketsPerObject, d.count),
				"max_connections":             d.narrow(&l.MaxConnections, d.count),
				"max_storage_value_bytes":     d.narrow(&l.MaxStorageValueBytes, d.size),
				"max_file_bytes":              d.size(&l.MaxFileBytes),
			})
		},
		"objects": func(path string, v any) {
			o := &c.Objects
			d.table(path, v, map[string]field{
				"lease_ttl":       d.duration(&o.LeaseTTL),
				"idle_timeout":    d.duration(&o.IdleTimeout),
				"request_timeout": d.duration(&o.RequestTimeout),
			})
		},
		"streams": func(path string, v any) {
			d.table(path, v, map[string]field{
				"public_url": d.str(&c.Streams.PublicURL),
				"retention": func(path string, v any) {
					c.Streams.Retention = []Retention{}
					d.list(path, v, func(path string, v any) {
						var r Retention
						d.table(path, v, map[string]field{
							"pattern":   d.str(&r.Pattern),
							"max_msgs":  d.count(&r.MaxMsgs),
							"max_age":   d.duration(&r.MaxAge),
							"max_bytes": d.size(&r.MaxBytes),
						})
						c.Streams.Retention = append(c.Streams.Retention, r)
					})
				},
			})
		},
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// suggest returns the known key closest to key, if it is close enough to be a typo or a
// shortening of it.
func suggest(key string, known []string) string {
	key = strings.ToLower(key)
	best, bestD := "", math.MaxInt
	for _, k := range known {
		if d := distance(key, strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= utf8.RuneCountInString(best)/4+1 && bestD < utf8.RuneCountInString(key) {
		return best
	}
	for _, k := range known {
		if utf8.RuneCountInString(key) >= 3 && strings.HasPrefix(strings.ToLower(k), key) {
			return k
		}
	}
	return ""
}

// distance is the Levenshtein edit distance between a and b, in runes.
func distance(as, bs string) int {
	a, b := []rune(as), []rune(bs)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
