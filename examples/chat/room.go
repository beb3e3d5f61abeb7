package chat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/holdfast/holdfast/objects"
)

// Protocol limits and texts, as in Cloudflare's original demo: its page (and ours) shows
// these strings to the user verbatim.
const (
	maxNameLen    = 32  // UTF-16 units, as JavaScript's String.length counts
	maxMessageLen = 256 // likewise
	historyLen    = 100 // messages a joining member is sent

	errNameTooLong    = "Name too long."
	errMessageTooLong = "Message too long."
	errRateLimited    = "Your IP is being rate-limited, please try again later."
	errBadFrame       = "Bad message: expected a JSON object."
	errNotUTF8        = "Bad message: not valid UTF-8."
)

// Storage layout: one key per message, named by its zero-padded timestamp so that key
// order is time order and List gives the history in order.
const msgPrefix = "msg/"

func msgKey(ts int64) string { return fmt.Sprintf("%s%016d", msgPrefix, ts) }

// Room is the ChatRoom class: one instance per room, holding its members' WebSockets
// (hibernating: the gateway holds them, so the instance can be evicted or move host) and
// the last 100 messages.
var Room = objects.Class{Name: "ChatRoom", New: newRoom}

type room struct {
	st objects.State
	// keys are the stored messages' keys, oldest first: kept in memory so that trimming
	// to historyLen does not list storage on every message.
	keys []string
	// last is the newest message's timestamp (ms): timestamps are strictly increasing.
	last int64
	// names caches each socket's member name ("" until its name frame), so a broadcast
	// does not decode 100 attachments per message. The attachments stay the truth: the
	// cache is rebuilt from them after an eviction.
	names map[string]string
	// unnamed are the sockets that have not sent their name yet: a broadcast skips them
	// without listing (and sorting) every socket per message. An id left here by an
	// accept that was undone is harmless: it only names a socket to skip.
	unnamed map[string]struct{}
	// cooldowns are the sessions' rate-limit states, by socket id: in memory only, as in
	// the original (an evicted room forgets them, which only forgives a cooldown).
	cooldowns map[string]*cooldown
}

// cooldown is one session's view of its rate limit, the original's RateLimiterClient:
// every frame the session may send is reported to the IP's RateLimiter in the background,
// and the session refuses frames until the limiter answered, and then for as long as the
// answer said. The limiter is never waited for: the room goes on with other members'
// frames while the call is out.
type cooldown struct {
	asking bool      // a call to the limiter is out
	until  time.Time // refuse until then (the limiter's last answer)
}

// member is a socket's attachment: all the per-connection state the room has, so that it
// survives eviction and moves.
type member struct {
	Name    string `json:"name,omitempty"` // empty until the name frame
	IP      string `json:"ip"`
	Limiter string `json:"limiter"` // the RateLimiter object for IP
}

func newRoom(st objects.State) objects.Object {
	r := &room{st: st, names: map[string]string{}, unnamed: map[string]struct{}{}, cooldowns: map[string]*cooldown{}}
	for _, e := range st.Storage().List(msgPrefix, "", 0) {
		r.keys = append(r.keys, e.Key)
	}
	for _, s := range st.Sockets().List("") {
		if r.nameOf(s) == "" {
			r.unnamed[s.ID()] = struct{}{}
		}
	}
	if n := len(r.keys); n > 0 {
		r.last, _ = strconv.ParseInt(strings.TrimPrefix(r.keys[n-1], msgPrefix), 10, 64)
	}
	return r
}

// Fetch accepts a member's WebSocket. Nothing is sent until the member names itself: the
// original protocol sends who is here and the history only then.
func (r *room) Fetch(w http.ResponseWriter, req *http.Request) {
	if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		writeError(w, http.StatusBadRequest, "bad_request", "expected a WebSocket upgrade")
		return
	}
	ip := req.RemoteAddr
	att, _ := json.Marshal(member{IP: ip, Limiter: LimiterName(ip)})
	s, err := r.st.Sockets().Accept(w, req, objects.SocketOptions{Attachment: att})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	r.names[s.ID()] = ""
	r.unnamed[s.ID()] = struct{}{}
}

// SocketMessage handles one frame: the name frame first, then chat messages.
func (r *room) SocketMessage(ctx context.Context, s objects.Socket, msg objects.Message) error {
	var m member
	_ = json.Unmarshal(s.Attachment(), &m)
	// The rate limit is checked before the frame is even parsed, as in the original: every
	// frame costs, malformed ones and the name frame included.
	ok, err := r.checkLimit(ctx, s, m.Limiter)
	if err != nil {
		return s.Close(1011, "rate limiter unavailable")
	}
	if !ok {
		return sendJSON(s, map[string]string{"error": errRateLimited})
	}
	if !utf8.Valid(msg.Data) {
		// json.Unmarshal would store U+FFFD for each bad byte; a frame is refused instead,
		// and nothing of it is stored or sent to the others.
		return sendJSON(s, map[string]string{"error": errNotUTF8})
	}
	var frame struct {
		Name    json.RawMessage `json:"name"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &frame); err != nil {
		return sendJSON(s, map[string]string{"error": errBadFrame})
	}
	if m.Name == "" {
		name := jsString(frame.Name)
		if name == "" {
			name = "anonymous" // the original's `data.name || "anonymous"`
		}
		return r.join(s, m, name)
	}
	text := jsString(frame.Message)
	if jsLen(text) > maxMessageLen {
		return sendJSON(s, map[string]string{"error": errMessageTooLong})
	}
	ts := max(time.Now().UnixMilli(), r.last+1)
	out, _ := json.Marshal(struct {
		Name      string `json:"name"`
		Message   string `json:"message"`
		Timestamp int64  `json:"timestamp"`
	}{m.Name, text, ts})
	key := msgKey(ts)
	if err := r.st.Storage().Put(key, out); err != nil {
		return err
	}
	keys := append(r.keys, key)
	for len(keys) > historyLen {
		if err := r.st.Storage().Delete(keys[0]); err != nil {
			return err
		}
		keys = keys[1:]
	}
	// Fields change only once every write succeeded: a failed event is undone in storage,
	// and must not leave the fields ahead of it.
	r.keys, r.last = keys, ts
	return r.broadcast(out)
}

// join handles the name frame: the member gets who is here and the history, everyone
// (the member included) learns it joined, then the member gets ready.
func (r *room) join(s objects.Socket, m member, name string) (err error) {
	if jsLen(name) > maxNameLen {
		if err := sendJSON(s, map[string]string{"error": errNameTooLong}); err != nil {
			return err
		}
		return s.Close(1009, errNameTooLong)
	}
	for _, o := range r.st.Sockets().List("") {
		if o.ID() == s.ID() {
			continue
		}
		if n := r.nameOf(o); n != "" {
			if err := sendJSON(s, map[string]string{"joined": n}); err != nil {
				return err
			}
		}
	}
	for _, e := range r.st.Storage().List(msgPrefix, "", 0) {
		if err := s.Send(e.Value); err != nil {
			return err
		}
	}
	m.Name = name
	att, _ := json.Marshal(m)
	if err := s.SetAttachment(att); err != nil {
		return err
	}
	// A failed event undoes the attachment, so the cache must forget the name too.
	r.names[s.ID()] = name
	delete(r.unnamed, s.ID())
	defer func() {
		if err != nil {
			r.names[s.ID()] = ""
			r.unnamed[s.ID()] = struct{}{}
		}
	}()
	joined, _ := json.Marshal(map[string]string{"joined": name})
	if err := r.broadcast(joined); err != nil {
		return err
	}
	return sendJSON(s, map[string]bool{"ready": true})
}

// SocketClose tells the others a named member left.
func (r *room) SocketClose(ctx context.Context, s objects.Socket, code int, reason string) error {
	name := r.nameOf(s)
	delete(r.names, s.ID())
	delete(r.unnamed, s.ID())
	delete(r.cooldowns, s.ID())
	if name != "" {
		quit, _ := json.Marshal(map[string]string{"quit": name})
		return r.broadcast(quit)
	}
	return nil
}

// broadcast sends data to every named member. Members that have not sent their name yet
// get the room's messages from the history when they do, so they are skipped here.
func (r *room) broadcast(data []byte) error {
	except := make([]string, 0, len(r.unnamed))
	for id := range r.unnamed {
		except = append(except, id)
	}
	return r.st.Sockets().Broadcast("", data, except...)
}

// checkLimit decides whether the session on s may send a frame now, as the original's
// RateLimiterClient.checkLimit: refused while its cooldown runs (a call to the limiter is
// out, or its last answer said to wait); otherwise allowed, and the frame is reported to
// the IP's RateLimiter in the background. Without a "limiters" binding the room does not
// limit.
func (r *room) checkLimit(ctx context.Context, s objects.Socket, limiter string) (bool, error) {
	ns := r.st.Namespace(LimitersBinding)
	if ns == nil || limiter == "" {
		return true, nil
	}
	c := r.cooldowns[s.ID()]
	if c == nil {
		c = &cooldown{}
		r.cooldowns[s.ID()] = c
	}
	if c.asking || time.Now().Before(c.until) {
		return false, nil
	}
	stub, err := ns.Get(limiter)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://limiter/", nil)
	if err != nil {
		return false, err
	}
	id := s.ID()
	if err := stub.Go(ctx, req, func(resp *http.Response, err error) error {
		return r.limiterAnswered(id, resp, err)
	}); err != nil {
		return false, err
	}
	c.asking = true
	return true, nil
}

// limiterAnswered takes the limiter's answer for socket id: the seconds to wait before the
// session's next frame. A limiter that cannot be reached closes the socket, as the
// original's reportError does, so that the client reconnects and starts over.
func (r *room) limiterAnswered(id string, resp *http.Response, err error) error {
	c := r.cooldowns[id]
	if c == nil {
		return nil // the socket closed meanwhile
	}
	c.asking = false
	var wait float64
	if err == nil {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("chat: rate limiter answered %s", resp.Status)
		} else if wait, err = strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && !(wait >= 0 && wait <= maxCooldown.Seconds()) {
			err = fmt.Errorf("chat: rate limiter answered a cooldown of %q s", b)
		}
	}
	if err != nil {
		delete(r.cooldowns, id)
		if s, ok := r.st.Sockets().Get(id); ok {
			return s.Close(1011, "rate limiter unavailable")
		}
		return nil
	}
	c.until = time.Now().Add(time.Duration(wait * float64(time.Second)))
	return nil
}

// nameOf is a socket's member name, from the cache or its attachment.
func (r *room) nameOf(s objects.Socket) string {
	if n, ok := r.names[s.ID()]; ok {
		return n
	}
	n := attachment(s).Name
	r.names[s.ID()] = n
	return n
}

func attachment(s objects.Socket) member {
	var m member
	_ = json.Unmarshal(s.Attachment(), &m)
	return m
}

func sendJSON(s objects.Socket, v any) error {
	b, _ := json.Marshal(v)
	return s.Send(b)
}

// jsString converts a JSON value to a string as the original's `"" + value` does for the
// cases that matter: strings as they are, other values as their JSON text, and a missing
// or null value as "".
func jsString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// jsLen is a string's length as JavaScript counts it (UTF-16 code units), so that the
// limits match the page's maxlength and the original's checks.
func jsLen(s string) int {
	n := 0
	for _, c := range s {
		n += utf16.RuneLen(c)
	}
	return n
}

// LimiterName is the RateLimiter object for a client IP: a digest, since an IPv6 address
// has characters, and a length, that object names do not allow.
func LimiterName(ip string) string {
	sum := sha256.Sum256([]byte("ip:" + ip))
	return hex.EncodeToString(sum[:])
}

// writeError writes Holdfast's JSON error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]map[string]string{"error": {"code": code, "message": message}})
}
