// Package chat is a port of Cloudflare's edge chat demo to Holdfast, written only against
// the public SDK (packages objects and functions) and the standard library.
//
// Three parts, as in the original:
//
//   - Edge, a function run on every gateway: it serves the page at / and the API.
//     POST /api/room answers a new private room id (64 hex digits);
//     GET /api/room/<name>/websocket hands the WebSocket to the room's ChatRoom object.
//   - Room, the ChatRoom class: one object per room. It holds its members' sockets as
//     hibernating sockets (the gateway keeps them open, each carrying the member's name as
//     its attachment), so the room can be evicted, or lose its host, without dropping
//     anyone. The last 100 messages are kept in the object's storage.
//   - Limiter, the RateLimiter class: one object per client IP, shared by every room.
//     Each session reports its frames to it in the background (Stub.Go) and refuses
//     frames, before parsing them, while the limiter's answer says to wait.
//
// The wire protocol is the original's, so its page works against this server too: the
// client sends {"name":...} then {"message":...}; the room sends {"joined":...} for those
// present, the history, {"ready":true}, then messages {"name","message","timestamp"}
// (timestamps strictly increasing), {"quit":...} and {"error":...}.
//
// The stock holdfast binary ships these classes and the function "chat":
//
//	holdfast dev --config examples/chat/holdfast.toml
package chat

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/holdfast/holdfast/functions"
)

// Binding names the classes are expected under in holdfast.toml, as in the original's
// wrangler.toml.
const (
	RoomsBinding    = "rooms"
	LimitersBinding = "limiters"
)

// Edge is the chat's function: routes "/" (the page) and "/api/" (the API) go to it.
var Edge functions.Handler = functions.HandlerFunc(edge)

//go:embed static
var staticFiles embed.FS

var static, _ = fs.Sub(staticFiles, "static")

func edge(w http.ResponseWriter, r *http.Request, env functions.Env) {
	if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
		api(w, r, env)
		return
	}
	serveStatic(w, r)
}

// api serves POST /api/room and /api/room/<name>/websocket.
func api(w http.ResponseWriter, r *http.Request, env functions.Env) {
	// Split the escaped path: a room name may contain an escaped '/'.
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/api/"), "/")
	if len(segs) == 0 || segs[0] != "room" {
		writeError(w, http.StatusNotFound, "not_found", "no such API: "+r.URL.Path)
		return
	}
	rooms := env.Namespace(RoomsBinding)
	if rooms == nil {
		writeError(w, http.StatusInternalServerError, "misconfigured", `no object binding "rooms" (class ChatRoom) in holdfast.toml`)
		return
	}
	if len(segs) == 1 {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST /api/room creates a private room")
			return
		}
		// The original answers the id as plain text, cross-origin allowed; its page reads
		// it with response.text().
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write([]byte(rooms.NewUniqueName()))
		return
	}
	name, err := url.PathUnescape(segs[1])
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "bad room name")
		return
	}
	object, ok := RoomObjectName(name)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "a room name has 1 to 32 characters; a private room id has 64 hex digits")
		return
	}
	if len(segs) != 3 || segs[2] != "websocket" {
		writeError(w, http.StatusNotFound, "not_found", "no such API: "+r.URL.Path)
		return
	}
	stub, err := rooms.Get(object)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	stub.ServeHTTP(w, r)
}

// RoomObjectName maps a room name from the URL to its ChatRoom object's name: a 64-hex
// private id is used as it is (lowercased), a name of 1 to 32 characters is hashed (object
// names allow only [A-Za-z0-9_-], room names anything). Anything else is no room.
func RoomObjectName(name string) (string, bool) {
	if isHex64(name) {
		return strings.ToLower(name), true
	}
	if name == "" || !utf8.ValidString(name) || jsLen(name) > maxNameLen {
		return "", false
	}
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:]), true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// serveStatic serves the embedded page: index.html at /, its assets by name.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	b, err := fs.ReadFile(static, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no such page: "+r.URL.Path)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// Small files, served from memory: revalidating every time keeps a changed page fresh.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}
