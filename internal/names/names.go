// Package names owns the grammar of object, stream and class names, and their mapping onto
// NATS subjects and KV keys.
//
// A name is one or more tokens separated by "/". A token is 1 to MaxTokenLen characters from
// [A-Za-z0-9_-]. A whole name is at most MaxNameLen bytes and at most MaxTokens tokens. The
// grammar excludes everything NATS treats specially ("*", ">", ".", whitespace), so a valid
// name always maps to a valid subject suffix and KV key without escaping.
//
// A class name is a single token.
package names

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of the grammar.
const (
	MaxNameLen  = 255
	MaxTokenLen = 64
	MaxTokens   = 16
)

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid name")

// Validate reports whether name follows the grammar. The error says what is wrong and wraps
// ErrInvalid.
func Validate(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes long, the limit is %d", ErrInvalid, len(name), MaxNameLen)
	}
	tokens, start := 0, 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			if !tokenByte(name[i]) {
				return fmt.Errorf("%w: %s at offset %d; names use letters, digits, '_', '-' and '/' between tokens", ErrInvalid, describeAt(name, i), i)
			}
			continue
		}
		n := i - start
		if n == 0 {
			return fmt.Errorf("%w: empty token at offset %d", ErrInvalid, start)
		}
		if n > MaxTokenLen {
			return fmt.Errorf("%w: token at offset %d is %d bytes long, the limit is %d", ErrInvalid, start, n, MaxTokenLen)
		}
		tokens++
		if tokens > MaxTokens {
			return fmt.Errorf("%w: more than %d tokens", ErrInvalid, MaxTokens)
		}
		start = i + 1
	}
	return nil
}

// ValidateClass reports whether class is a single valid token.
func ValidateClass(class string) error {
	if strings.Contains(class, "/") {
		return fmt.Errorf("%w: a class name is one token, without '/'", ErrInvalid)
	}
	return Validate(class)
}

// ReservedStreamPrefix starts the Durable Streams subscription API's paths
// (/v1/stream/__ds/...), so no stream may be named under it.
const ReservedStreamPrefix = "__ds/"

// ValidateStream reports whether name may name a stream: a valid name (on every path a
// stream is named by: WebSocket, HTTP, durable-stream's subjects, fork sources,
// subscriptions) and not under ReservedStreamPrefix. The error wraps ErrInvalid.
func ValidateStream(name string) error {
	if err := Validate(name); err != nil {
		return err
	}
	if name == strings.TrimSuffix(ReservedStreamPrefix, "/") || strings.HasPrefix(name, ReservedStreamPrefix) {
		return fmt.Errorf("%w: stream names under %q are reserved for the subscription API", ErrInvalid, ReservedStreamPrefix)
	}
	return nil
}

// describeAt names the character starting at byte i of s as a person reads it: the rune
// ('é', not the 'Ã' of its first byte), or the byte when s is not UTF-8 there.
func describeAt(s string, i int) string {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("byte 0x%02x (not UTF-8)", s[i])
	}
	return fmt.Sprintf("character %q", r)
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// Subject maps a valid name onto NATS subject tokens: "a/b" becomes "a.b".
func Subject(name string) string { return strings.ReplaceAll(name, "/", ".") }

// Key is the KV key of (class, name). KV keys allow "/", so the name is kept as it is and
// the class is its own leading token.
func Key(class, name string) string { return class + "." + name }

// SplitKey is the inverse of Key.
func SplitKey(key string) (class, name string, ok bool) {
	return strings.Cut(key, ".")
}
