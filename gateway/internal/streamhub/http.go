package streamhub

import "net/http"

// SecurityHeaders sets the Durable Streams protocol's security headers (its section 12.7)
// on a stream's HTTP response: the protocol's, an EventSource's, sse-cluster's.
func SecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
}
