package gateway

// Cross-origin requests from browsers (CORS, the Fetch standard), answered the same way on
// every surface the gateway serves: object and function routes, /v1/stream, /v1/files,
// /r2. The origins are Options.AllowedOrigins ([auth] allowed_origins), the list that
// also admits WebSocket upgrades (checkOrigin).
//
//   - A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here,
//     before authentication: a browser never sends credentials with one, and it grants
//     nothing by itself. From an allowed origin: 204 with Access-Control-Allow-Origin (the
//     origin), -Methods, -Headers (those asked for, Authorization included) and -Max-Age.
//     From any other: 403 with no CORS header, so the browser refuses the real request.
//     Objects and functions never see preflights.
//   - Any other request from an allowed origin gets Access-Control-Allow-Origin and
//     -Expose-Headers, and is then served as usual: it still needs its API key.
//   - A request from another origin gets no CORS header: the browser hides the answer.

import (
	"net/http"

	"github.com/holdfast/holdfast/gateway/internal/dshttp"
	"github.com/holdfast/holdfast/internal/httperr"
)

const (
	// corsMethods are the methods preflights are granted.
	corsMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	// corsMaxAge is how long, in seconds, a browser may cache a preflight's answer.
	corsMaxAge = "600"
	// corsExposed are the response headers a page may read: "*" for every header (the
	// files' X-Meta-*, a function's own), and by name those the protocols define, for
	// browsers that send credentials, where "*" is not a wildcard.
	corsExposed = "*, " + dshttp.ExposedHeaders + ", Content-Range, Accept-Ranges, Last-Modified, Retry-After, WWW-Authenticate"
)

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// cors applies the gateway's CORS policy to r and reports whether it answered r (a
// preflight); the caller serves r otherwise.
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false // not a cross-origin browser request
	}
	hd := w.Header()
	hd.Add("Vary", "Origin")
	allowed := g.checkOrigin(r)
	if !isPreflight(r) {
		if allowed {
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Access-Control-Expose-Headers", corsExposed)
		}
		return false
	}
	if !allowed {
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, "origin not allowed: "+origin+" (see [auth] allowed_origins)")
		return true
	}
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Methods", corsMethods)
	if v := r.Header.Get("Access-Control-Request-Headers"); v != "" {
		hd.Set("Access-Control-Allow-Headers", v)
		hd.Add("Vary", "Access-Control-Request-Headers")
	}
	hd.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
