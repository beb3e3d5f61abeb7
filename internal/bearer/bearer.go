// Package bearer reads bearer tokens (RFC 6750: "Authorization: Bearer <token>"), the one
// way the gateway's API keys and the Durable Streams subscriptions' wake tokens are read
// off a request.
package bearer

import "strings"

// Token reads "Bearer <token>": the scheme is case-insensitive (RFC 9110 section 11.1)
// and may be followed by more than one space.
func Token(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}
