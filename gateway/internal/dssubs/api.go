package dssubs

// Durable Streams subscriptions over HTTP (PROTOCOL.md sections 6 and 7), under the
// reserved prefix /v1/stream/__ds/:
//
//	PUT|GET|DELETE subscriptions/{id}           create (201) or re-confirm (200), read, delete
//	POST           subscriptions/{id}/streams   add explicit streams (204)
//	DELETE         subscriptions/{id}/streams/{path...}
//	POST           subscriptions/{id}/callback  a webhook's asynchronous ack (wake token)
//	POST           subscriptions/{id}/claim|ack|release   pull-wake (ack, release: claim token)
//	GET            jwks.json                    the webhook signing keys
//
// Authentication is the gateway's API keys, except for callback, ack and release, whose
// bearer is the wake's token (verified by its MAC, in constant time), and jwks.json, which
// is public like any JWKS.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/bearer"
	"github.com/holdfast/holdfast/internal/names"
)

// TokenAuth reports requests authenticated by a wake token or public, not by API key.
func TokenAuth(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/stream/__ds/")
	if !ok {
		return false
	}
	if rest == "jwks.json" {
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	f := strings.Split(rest, "/")
	return r.Method == http.MethodPost && len(f) == 3 && f[0] == "subscriptions" &&
		(f[2] == "callback" || f[2] == "ack" || f[2] == "release")
}

// The subscription API's error codes, in its own UPPER_CASE vocabulary (PROTOCOL.md
// sections 6 and 7; its conformance tests read them): docs/errors.md lists them with the
// rest.
const (
	subInvalidRequest   = "INVALID_REQUEST"        // 400: a malformed id, body or field
	subWebhookRejected  = "WEBHOOK_URL_REJECTED"   // 400: a webhook URL to a private or local address
	subTooManyStreams   = "TOO_MANY_STREAMS"       // 400: more than 2,000 links
	subNotFound         = "NOT_FOUND"              // 404: no such control API route
	subNoSuch           = "SUBSCRIPTION_NOT_FOUND" // 404
	subMethodNotAllowed = "METHOD_NOT_ALLOWED"     // 405
	subExists           = "SUBSCRIPTION_EXISTS"    // 409: the id exists with another configuration
	subAlreadyClaimed   = "ALREADY_CLAIMED"        // 409: the wake is claimed by another worker
	subNoPendingWork    = "NO_PENDING_WORK"        // 409: nothing to claim
	subFenced           = "FENCED"                 // 409: a token or wake that is not current
	subInvalidOffset    = "INVALID_OFFSET"         // 409: an ack that regresses a cursor or passes a tail
	subTokenInvalid     = "TOKEN_INVALID"          // 401: a wake token that does not verify
	subUnavailable      = "UNAVAILABLE"            // 503
	subTooMany          = "TOO_MANY_SUBSCRIPTIONS" // 503: the cluster serves its most subscriptions
)

// dsError writes the protocol's error shape, with extra fields beside code and message.
func dsError(w http.ResponseWriter, status int, code, msg string, extra map[string]any) {
	e := map[string]any{"code": code, "message": msg}
	for k, v := range extra {
		e[k] = v
	}
	dsJSON(w, status, map[string]any{"error": e})
}

func dsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// dsReq is a parsed request for one subscription.
type dsReq struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	id  string
	st  *dsStore
	sec *dsSecrets
}

// ServeHTTP serves /v1/stream/__ds/{rest...}.
func (m *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rest := r.PathValue("rest")
	st, sec, err := m.open(r.Context())
	if err != nil {
		dsError(w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
		return
	}
	if rest == "jwks.json" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			dsError(w, http.StatusMethodNotAllowed, subMethodNotAllowed, "GET only", nil)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{sec.jwk()}})
		return
	}
	f := strings.SplitN(rest, "/", 4)
	if f[0] != "subscriptions" || len(f) < 2 {
		dsError(w, http.StatusNotFound, subNotFound, "no such Durable Streams control API", nil)
		return
	}
	if !validSubID(f[1]) {
		dsError(w, http.StatusBadRequest, subInvalidRequest, "a subscription id is 1 to 128 of [A-Za-z0-9_-]", nil)
		return
	}
	q := &dsReq{w: w, r: r, ctx: r.Context(), id: f[1], st: st, sec: sec}
	action := ""
	if len(f) > 2 {
		action = f[2]
	}
	switch {
	case action == "" && len(f) == 2:
		switch r.Method {
		case http.MethodPut:
			m.create(q)
		case http.MethodGet:
			m.read(q)
		case http.MethodDelete:
			m.remove(q)
		default:
			dsError(w, http.StatusMethodNotAllowed, subMethodNotAllowed, "PUT, GET or DELETE", nil)
		}
	case action == "streams" && len(f) == 3 && r.Method == http.MethodPost:
		m.addStreams(q)
	case action == "streams" && len(f) == 4 && r.Method == http.MethodDelete:
		m.removeStream(q, f[3])
	case len(f) == 3 && r.Method == http.MethodPost && (action == "callback" || action == "ack" || action == "release"):
		m.wakeAnswer(q, action)
	case len(f) == 3 && r.Method == http.MethodPost && action == "claim":
		m.claim(q)
	default:
		dsError(w, http.StatusNotFound, subNotFound, "no such subscription API: "+r.Method+" "+rest, nil)
	}
}

// readJSON decodes a bounded JSON body.
func (q *dsReq) readJSON(v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, 256<<10))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, "the body must be a JSON object of at most 256 KiB: "+err.Error(), nil)
		return false
	}
	return true
}

// streamRoot is the stream root URL (callback and JWKS URLs derive from it): under
// Options.PublicURL, else the one the client used.
func (m *Server) streamRoot(r *http.Request) string {
	if u := m.opts.PublicURL; u != "" {
		return u + "/v1/stream"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/v1/stream"
}

type dsCreateBody struct {
	Type    *string  `json:"type"`
	Pattern *string  `json:"pattern"`
	Streams []string `json:"streams"`
	Webhook *struct {
		URL string `json:"url"`
	} `json:"webhook"`
	WakeStream  *string `json:"wake_stream"`
	LeaseTTLms  *int64  `json:"lease_ttl_ms"`
	Description *string `json:"description"`
}

func (m *Server) create(q *dsReq) {
	var b dsCreateBody
	if !q.readJSON(&b) {
		return
	}
	bad := func(code, msg string) { dsError(q.w, http.StatusBadRequest, code, msg, nil) }
	s := &dsSub{ID: q.id, LeaseTTLms: dsDefaultLeaseTTL.Milliseconds(), Status: "active", Links: map[string]*dsLink{}}
	if b.Type == nil || *b.Type != "webhook" && *b.Type != "pull-wake" {
		bad(subInvalidRequest, `type must be "webhook" or "pull-wake"`)
		return
	}
	s.Type = *b.Type
	if b.Pattern != nil {
		if err := validPattern(*b.Pattern); err != nil {
			bad(subInvalidRequest, err.Error())
			return
		}
		s.Pattern = *b.Pattern
	}
	if s.Pattern == "" && len(b.Streams) == 0 {
		bad(subInvalidRequest, "pattern or streams is required")
		return
	}
	if len(b.Streams) > dsMaxLinks {
		bad(subInvalidRequest, "too many streams")
		return
	}
	seen := map[string]bool{}
	for _, p := range b.Streams {
		if err := names.ValidateStream(p); err != nil {
			bad(subInvalidRequest, "streams: "+err.Error())
			return
		}
		if !seen[p] {
			seen[p] = true
			s.Explicit = append(s.Explicit, p)
		}
	}
	sort.Strings(s.Explicit)
	switch s.Type {
	case "webhook":
		if b.Webhook == nil || b.Webhook.URL == "" {
			bad(subInvalidRequest, "webhook.url is required")
			return
		}
		if b.WakeStream != nil {
			bad(subInvalidRequest, "wake_stream is for pull-wake subscriptions")
			return
		}
		if err := checkWebhookURL(b.Webhook.URL, m.allowLocal); err != nil {
			bad(subWebhookRejected, err.Error())
			return
		}
		s.URL = b.Webhook.URL
	case "pull-wake":
		if b.WakeStream == nil {
			bad(subInvalidRequest, "wake_stream is required")
			return
		}
		if b.Webhook != nil {
			bad(subInvalidRequest, "webhook is for webhook subscriptions")
			return
		}
		if err := names.ValidateStream(*b.WakeStream); err != nil {
			bad(subInvalidRequest, "wake_stream: "+err.Error())
			return
		}
		s.WakeStream = *b.WakeStream
	}
	if b.LeaseTTLms != nil {
		d := time.Duration(*b.LeaseTTLms) * time.Millisecond
		if d < dsMinLeaseTTL || d > dsMaxLeaseTTL {
			bad(subInvalidRequest, "lease_ttl_ms must be from 1000 to 600000")
			return
		}
		s.LeaseTTLms = *b.LeaseTTLms
	}
	if b.Description != nil {
		if len(*b.Description) > dsMaxDescription {
			bad(subInvalidRequest, "description is over 1 KiB")
			return
		}
		s.Description = *b.Description
	}
	cfg, _ := json.Marshal([]any{s.Type, s.Pattern, s.Explicit, s.URL, s.WakeStream, s.LeaseTTLms, s.Description})
	sum := sha256.Sum256(cfg)
	s.Hash = hex.EncodeToString(sum[:])
	if old, _, err := q.st.get(q.ctx, q.id); err != nil {
		dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
		return
	} else if old != nil {
		m.confirm(q, old, s.Hash)
		return
	}
	if s.Type == "pull-wake" {
		rd, ans, err := m.sc.Read(q.ctx, s.WakeStream, streamapi.DSReadQuery{From: 1 << 62})
		switch {
		case err != nil:
			dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
			return
		case ans.Status != http.StatusOK:
			bad(subInvalidRequest, "wake_stream "+s.WakeStream+" does not exist: create it first (a JSON stream)")
			return
		case !streamapi.IsJSON(rd.Meta.ContentType):
			bad(subInvalidRequest, "wake_stream "+s.WakeStream+" must be an application/json stream")
			return
		}
	}
	// Backfill: existing matching streams and the explicit ones, linked at their tails.
	var paths []string
	if s.Pattern != "" {
		found, err := m.listMatching(q.ctx, s.Pattern, dsMaxLinks)
		if err != nil {
			dsError(q.w, http.StatusServiceUnavailable, subUnavailable, "listing streams: "+err.Error(), nil)
			return
		}
		for _, p := range found {
			if p != s.WakeStream {
				paths = append(paths, p)
				s.Links[p] = &dsLink{Glob: true}
			}
		}
	}
	for _, p := range s.Explicit {
		if s.Links[p] == nil {
			paths = append(paths, p)
			s.Links[p] = &dsLink{}
		}
		s.Links[p].Explicit = true
	}
	if len(s.Links) > dsMaxLinks {
		bad(subTooManyStreams, "the subscription would link more than 2000 streams")
		return
	}
	tails, _ := m.readTails(q.ctx, paths)
	for p, l := range s.Links {
		l.Acked = tails[p]
	}
	m.mu.Lock()
	full := len(m.mirror) >= dsMaxSubs
	m.mu.Unlock()
	if full {
		dsError(q.w, http.StatusServiceUnavailable, subTooMany, "the cluster has the most subscriptions it serves", nil)
		return
	}
	s.Base, s.Created = m.streamRoot(q.r), time.Now().UnixNano()
	val, err := json.Marshal(s)
	if err == nil {
		_, err = q.st.kv.Create(q.ctx, dsSubKey+q.id, val)
	}
	if err != nil {
		if old, _, gerr := q.st.get(q.ctx, q.id); gerr == nil && old != nil {
			m.confirm(q, old, s.Hash) // created concurrently
			return
		}
		dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
		return
	}
	// Watch for appends before answering, so that a write right after is seen here.
	m.observe(s)
	dsJSON(q.w, http.StatusCreated, m.describe(q, s))
}

func (m *Server) confirm(q *dsReq, old *dsSub, hash string) {
	if old.Hash != hash {
		dsError(q.w, http.StatusConflict, subExists, "subscription "+q.id+" exists with another configuration", nil)
		return
	}
	dsJSON(q.w, http.StatusOK, m.describe(q, old))
}

// describe is the GET shape (never a secret).
func (m *Server) describe(q *dsReq, s *dsSub) map[string]any {
	infos := streamInfos(s, nil)
	for _, i := range infos {
		delete(i, "tail_offset")
		delete(i, "has_pending")
	}
	out := map[string]any{"id": s.ID, "subscription_id": s.ID, "type": s.Type, "streams": infos,
		"pattern": nil, "webhook": nil, "wake_stream": nil, "lease_ttl_ms": s.LeaseTTLms,
		"created_at": time.Unix(0, s.Created).UTC().Format("2006-01-02T15:04:05.000Z"),
		"status":     s.Status, "description": nil, "generation": s.Generation}
	if s.Pattern != "" {
		out["pattern"] = s.Pattern
	}
	if s.Description != "" {
		out["description"] = s.Description
	}
	if s.Type == "webhook" {
		out["webhook"] = map[string]any{"url": s.URL, "signing": map[string]any{
			"alg": "ed25519", "kid": q.sec.kid, "jwks_url": m.streamRoot(q.r) + "/__ds/jwks.json"}}
		if s.NextTry > 0 {
			out["next_attempt_at"] = time.UnixMilli(s.NextTry).UTC().Format(time.RFC3339Nano)
		}
	} else {
		out["wake_stream"] = s.WakeStream
		if s.Holder != "" {
			out["holder"] = s.Holder
		}
	}
	return out
}

func (m *Server) notFound(q *dsReq) {
	dsError(q.w, http.StatusNotFound, subNoSuch, "no subscription "+q.id, nil)
}

func (m *Server) read(q *dsReq) {
	s, _, err := q.st.get(q.ctx, q.id)
	if !m.missed(q, s, err) {
		dsJSON(q.w, http.StatusOK, m.describe(q, s))
	}
}

func (m *Server) remove(q *dsReq) {
	s, _, err := q.st.get(q.ctx, q.id)
	if err == nil && s != nil {
		err = q.st.kv.Purge(q.ctx, dsSubKey+q.id)
	}
	if !m.missed(q, s, err) {
		m.forget(q.id)
		q.w.WriteHeader(http.StatusNoContent)
	}
}

func (m *Server) addStreams(q *dsReq) {
	var b struct {
		Streams []string `json:"streams"`
	}
	if !q.readJSON(&b) {
		return
	}
	if len(b.Streams) == 0 || len(b.Streams) > dsMaxLinks {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, "streams: 1 to 2000 stream paths", nil)
		return
	}
	for _, p := range b.Streams {
		if err := names.ValidateStream(p); err != nil {
			dsError(q.w, http.StatusBadRequest, subInvalidRequest, "streams: "+err.Error(), nil)
			return
		}
	}
	tails, _ := m.readTails(q.ctx, b.Streams)
	tooMany := false
	s, err := q.st.update(q.ctx, q.id, func(s *dsSub) error {
		n := 0
		for _, p := range b.Streams {
			l := s.Links[p]
			switch {
			case l == nil && len(s.Links) >= dsMaxLinks:
				tooMany = true
				return errDSNoChange
			case l == nil:
				s.Links[p] = &dsLink{Explicit: true, Acked: tails[p]} // at the current tail
				n++
			case !l.Explicit:
				l.Explicit = true
				n++
			}
		}
		if n == 0 {
			return errDSNoChange
		}
		return nil
	})
	switch {
	case m.missed(q, s, err):
	case tooMany:
		dsError(q.w, http.StatusBadRequest, subTooManyStreams, "a subscription links at most 2000 streams", nil)
	default:
		m.observe(s)
		q.w.WriteHeader(http.StatusNoContent)
	}
}

// missed answers a read or update of a subscription that has nothing to act on: 503 when
// the bucket failed, 404 when the subscription does not exist. False: s is there.
func (m *Server) missed(q *dsReq, s *dsSub, err error) bool {
	switch {
	case err != nil:
		dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
	case s == nil:
		m.notFound(q)
	default:
		return false
	}
	return true
}

func (m *Server) removeStream(q *dsReq, path string) {
	if err := names.ValidateStream(path); err != nil {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, err.Error(), nil)
		return
	}
	s, err := q.st.update(q.ctx, q.id, func(s *dsSub) error {
		l := s.Links[path]
		if l == nil || !l.Explicit {
			return errDSNoChange
		}
		l.Explicit = false
		if s.Pattern != "" && globMatch(s.Pattern, path) {
			l.Glob = true // the glob link stays
		} else {
			delete(s.Links, path)
		}
		return nil
	})
	if !m.missed(q, s, err) {
		m.observe(s)
		q.w.WriteHeader(http.StatusNoContent)
	}
}

// errFenced and errOffset abort an update with the protocol's 409s.
var (
	errFenced = errors.New("the wake generation is stale")
	errNoWork = errors.New("the subscription has no pending work")
)

type dsOffsetError struct{ msg string }

func (e *dsOffsetError) Error() string { return e.msg }

type dsAckBody struct {
	WakeID     string `json:"wake_id"`
	Generation uint64 `json:"generation"`
	Acks       []struct {
		Stream string `json:"stream"`
		Path   string `json:"path"`
		Offset string `json:"offset"`
	} `json:"acks"`
	Done bool `json:"done"`
}

// wakeAnswer serves callback (webhook), ack and release (pull-wake).
func (m *Server) wakeAnswer(q *dsReq, action string) {
	tok, ok := bearer.Token(q.r.Header.Get("Authorization"))
	claims, valid := q.sec.verify(tok)
	if !ok || !valid || claims.id != q.id {
		dsError(q.w, http.StatusUnauthorized, subTokenInvalid, "a valid wake token is required (Authorization: Bearer <token>)", nil)
		return
	}
	var b dsAckBody
	if !q.readJSON(&b) {
		return
	}
	if len(b.Acks) > dsMaxLinks {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, "too many acks", nil)
		return
	}
	wantKind, wantType := "claim", "pull-wake"
	if action == "callback" {
		wantKind, wantType = "cb", "webhook"
	}
	s, _, err := q.st.get(q.ctx, q.id)
	if err != nil {
		dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
		return
	}
	if s == nil || s.Created != claims.created {
		m.notFound(q)
		return
	}
	if s.Type != wantType || claims.kind != wantKind {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, "this is not a "+wantType+" subscription's wake token", nil)
		return
	}
	// Offsets are checked against the tails read now: an ack never passes a stream's tail.
	acks := map[string]uint64{}
	var paths []string
	for _, a := range b.Acks {
		p := a.Stream
		if p == "" {
			p = a.Path
		}
		seq, now, ok := streamapi.ParseOffset(a.Offset)
		if !ok || now || a.Offset == "-1" {
			dsError(q.w, http.StatusConflict, subInvalidOffset, "bad ack offset "+a.Offset, nil)
			return
		}
		acks[p] = max(acks[p], seq)
		paths = append(paths, p)
	}
	tails, _ := m.readTails(q.ctx, paths)
	done := b.Done || action == "release"
	s, err = q.st.update(q.ctx, q.id, func(s *dsSub) error {
		if s.Created != claims.created || !s.inFlight() || claims.generation != s.Generation ||
			b.Generation != s.Generation || b.WakeID != s.WakeID || claims.wakeID != s.WakeID ||
			action != "callback" && s.Holder == "" {
			return errFenced
		}
		if action != "release" {
			for p, o := range acks {
				l := s.Links[p]
				switch {
				case l == nil:
					return &dsOffsetError{"ack for a stream the subscription does not link: " + p}
				case o < l.Acked:
					return &dsOffsetError{"ack offset regresses the cursor of " + p}
				case o > tails[p]:
					return &dsOffsetError{"ack offset is beyond the tail of " + p}
				}
			}
			for p, o := range acks {
				s.Links[p].Acked = o
			}
		}
		if done {
			s.clearWake()
		} else {
			// A valid answer proves the wake arrived: no retry is due any more.
			s.LeaseUntil = time.Now().UnixMilli() + s.LeaseTTLms
			s.Status, s.Attempts, s.NextTry = "active", 0, 0
		}
		return nil
	})
	var oe *dsOffsetError
	switch {
	case errors.Is(err, errFenced):
		dsError(q.w, http.StatusConflict, subFenced, "the wake generation is stale", nil)
		return
	case errors.As(err, &oe):
		dsError(q.w, http.StatusConflict, subInvalidOffset, oe.msg, nil)
		return
	case m.missed(q, s, err):
		return
	}
	next := false
	if done {
		if next, err = m.wakeIfPending(q.ctx, q.st, q.sec, s); err != nil {
			m.log.Warn("ds subscription: next wake failed", "subscription", q.id, "err", err)
			m.poke(q.id, "", false)
		}
	}
	if action == "release" {
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	dsJSON(q.w, http.StatusOK, map[string]any{"ok": true, "next_wake": next})
}

// claim gives a pull-wake subscription's current wake to one worker.
func (m *Server) claim(q *dsReq) {
	var b struct {
		Worker string `json:"worker"`
	}
	if !q.readJSON(&b) {
		return
	}
	if b.Worker == "" || len(b.Worker) > 256 {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, "worker: 1 to 256 bytes", nil)
		return
	}
	s, _, err := q.st.get(q.ctx, q.id)
	if err != nil {
		dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
		return
	}
	if s == nil {
		m.notFound(q)
		return
	}
	if s.Type != "pull-wake" {
		dsError(q.w, http.StatusBadRequest, subInvalidRequest, "not a pull-wake subscription", nil)
		return
	}
	tails, gone := m.tails(q.ctx, s)
	var held *dsSub
	s, err = q.st.update(q.ctx, q.id, func(s *dsSub) error {
		held = nil
		now := time.Now().UnixMilli()
		if s.Holder != "" && now < s.LeaseUntil {
			held = s
			return errDSNoChange
		}
		if s.Holder != "" { // an expired lease: its wake is over
			s.clearWake()
		}
		gcLinks(s, gone)
		if !s.inFlight() {
			if _, ok := s.pending(tails); !ok {
				return errNoWork
			}
			s.newWake(tails)
		}
		s.Holder, s.LeaseUntil = b.Worker, now+s.LeaseTTLms
		return nil
	})
	switch {
	case errors.Is(err, errNoWork):
		dsError(q.w, http.StatusConflict, subNoPendingWork, "the subscription has no pending work", map[string]any{"generation": s.Generation})
	case err != nil:
		dsError(q.w, http.StatusServiceUnavailable, subUnavailable, err.Error(), nil)
	case s == nil:
		m.notFound(q)
	case held != nil:
		dsError(q.w, http.StatusConflict, subAlreadyClaimed, "another worker holds the subscription",
			map[string]any{"current_holder": held.Holder, "generation": held.Generation})
	default:
		m.observe(s)
		dsJSON(q.w, http.StatusOK, map[string]any{"wake_id": s.WakeID, "generation": s.Generation,
			"token": q.sec.token(s, "claim"), "streams": streamInfos(s, tails), "lease_ttl_ms": s.LeaseTTLms})
	}
}
