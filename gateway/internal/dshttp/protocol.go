// Package dshttp serves the Durable Streams protocol over plain HTTP at /v1/stream/{name}
// (PROTOCOL.md of durable-streams/durable-streams; docs/streams.md): PUT create, POST
// append and close, GET catch-up, long-poll and live=sse, HEAD, DELETE, and forks. The
// gateway parses and validates the request; the stream's object (builtin/stream,
// durable.go) decides and stores, one request at a time; appends go to it in batches of
// the appends in flight (batch.go). Reads go through gateway/internal/dsread (the records
// from the log at the gateway), a long-poll and a live=sse response follow the stream's
// feed, and an EventSource (a GET asking for text/event-stream) is the sse package's.
// Offsets are the log's seqs, zero-padded so that they sort as strings
// (streamapi.FormatOffset), so HTTP, EventSource and WebSocket clients share one numbering.
//
// It must not import the gateway, the WebSocket streams (wsstream), the subscriptions
// (dssubs), the Stream class or the runtime: the gateway routes WebSocket upgrades itself
// and hands this package what it needs in Config.
package dshttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/gateway/internal/sse"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/names"
)

// DefaultLongPollTimeout is how long a long-poll read waits for data without
// Config.LongPoll.
const DefaultLongPollTimeout = 30 * time.Second

const (
	// sseMaxLife closes protocol SSE responses after about a minute, as the protocol asks
	// (CDN collapsing); clients reconnect from the last control event's offset.
	sseMaxLife = 60 * time.Second
	// maxDSBody bounds one append's body.
	maxDSBody = 4 << 20
)

// Config configures a Server; the gateway fills it from its Options.
type Config struct {
	Streams  *streamclient.Client // the Stream objects
	Hub      *streamhub.Hub       // the feeds; the bound of a batch of appends
	Hooks    *streamhub.Hooks     // the server hooks
	Reads    *dsread.Reader       // reads from an offset, a fork's included
	Events   *sse.Server          // EventSources and live=sse responses
	LongPoll time.Duration        // how long a long-poll waits; DefaultLongPollTimeout
	// Draining, closed when the gateway drains (conns.Hub.Draining), answers every
	// long-poll waiting as its timeout would: the client polls again, on another gateway.
	Draining       <-chan struct{}
	RequestTimeout time.Duration
	MaxBodyBytes   int64 // a JSON append shown to the AuthorizePublish hook
	Metrics        *metrics.Gateway
}

// Server serves the Durable Streams protocol of a gateway.
type Server struct {
	opts     Config
	ctx      context.Context
	sc       *streamclient.Client
	streams  *streamhub.Hub
	hooks    *streamhub.Hooks
	reads    *dsread.Reader
	events   *sse.Server
	metrics  *metrics.Gateway
	longPoll time.Duration

	appends appendBatcher // batch.go
}

// New is the Durable Streams protocol of a gateway; the appends batched in flight are
// sent on ctx (not on any one caller's).
func New(ctx context.Context, cfg Config) *Server {
	h := &Server{opts: cfg, ctx: ctx, sc: cfg.Streams, streams: cfg.Hub, hooks: cfg.Hooks, reads: cfg.Reads,
		events: cfg.Events, metrics: cfg.Metrics, longPoll: cfg.LongPoll}
	h.appends.queues = map[string]*appendQueue{}
	if h.longPoll <= 0 {
		h.longPoll = DefaultLongPollTimeout
	}
	return h
}

// ExposedHeaders are the protocol's response headers a browser may read (CORS).
const ExposedHeaders = "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Stream-TTL, Stream-Expires-At, " +
	"Stream-Sse-Data-Encoding, Producer-Epoch, Producer-Seq, Producer-Expected-Seq, Producer-Received-Seq, ETag, Content-Type, Location"

// prelude sets the protocol's security headers (its section 12.7) and answers an OPTIONS
// that is not a CORS preflight (those the gateway answers); it reports whether r
// is still to be served.
func (h *Server) prelude(w http.ResponseWriter, r *http.Request) bool {
	hd := w.Header()
	streamhub.SecurityHeaders(hd)
	if r.Method == http.MethodOptions {
		hd.Set("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// ServeHTTP serves /v1/stream/{name...}: every method but a WebSocket upgrade (the
// gateway's to route).
func (h *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.prelude(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := names.ValidateStream(name); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, err.Error())
		return
	}
	if !h.authorizeHTTP(w, r, name) {
		return
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		if !q.Has("offset") && !q.Has("live") && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			h.events.ServeEventSource(w, r, name)
			return
		}
		h.read(w, r, name)
	case http.MethodHead:
		h.head(w, r, name)
	case http.MethodPut:
		h.create(w, r, name)
	case http.MethodPost:
		h.appendHTTP(w, r, name)
	case http.MethodDelete:
		h.delete(w, r, name)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.CodeMethod, r.Method+" is not supported on streams")
	}
}

// writeAnswer relays a /ds answer that is not a success in the error shape: a refusal's
// code, or the protocol outcome's (404 not_found, 409 stream_closed, ...:
// streamapi.DSAnswer.ErrorCode), with the object's message.
func writeAnswer(w http.ResponseWriter, a streamapi.DSAnswer) {
	msg := a.Message
	if msg == "" {
		msg = http.StatusText(a.Status)
	}
	httperr.Write(w, a.Status, a.ErrorCode(), msg)
}

// closedHeader is the protocol's Stream-Closed: only "true", in any case, counts.
func closedHeader(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Stream-Closed"), "true")
}

// parseTTL validates Stream-TTL: a decimal integer without sign or leading zeros.
func parseTTL(v string) (int64, bool) {
	if v == "" || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// jsonBody validates a JSON-mode body (streamapi.CheckData: JSON text, so valid UTF-8
// too) and flattens one level of array: the bytes to store and how many messages they hold
// (data is then a JSON array).
func jsonBody(b []byte) (data []byte, batch int, err error) {
	if err := streamapi.CheckData("application/json", b); err != nil {
		return nil, 0, err
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '[' {
		return t, 1, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(t, &elems); err != nil {
		return nil, 0, err
	}
	switch len(elems) {
	case 0:
		return nil, 0, nil
	case 1:
		return bytes.TrimSpace(elems[0]), 1, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), len(elems), nil
}

// writeDataError answers a body streamapi.CheckData (or jsonBody) refused.
func writeDataError(w http.ResponseWriter, err error) {
	var se *streamapi.Error
	if errors.As(err, &se) {
		httperr.Write(w, se.Status, se.Code, se.Message)
		return
	}
	httperr.Write(w, http.StatusBadRequest, httperr.CodeBadJSON, err.Error())
}

func (h *Server) create(w http.ResponseWriter, r *http.Request, name string) {
	forked := r.Header.Get("Stream-Forked-From") != ""
	if !forked && (r.Header.Get("Stream-Fork-Offset") != "" || len(r.Header.Values("Stream-Fork-Sub-Offset")) > 0) {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From")
		return
	}
	c := streamapi.DSCreate{ContentType: "application/octet-stream", Closed: closedHeader(r)}
	ctGiven := r.Header.Get("Content-Type") != ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if c.ContentType = streamapi.MediaType(ct); c.ContentType == "" {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "malformed Content-Type")
			return
		}
	}
	ttl, exp := r.Header.Get("Stream-TTL"), r.Header.Get("Stream-Expires-At")
	if ttl != "" && exp != "" {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-TTL and Stream-Expires-At exclude each other")
		return
	}
	if ttl != "" {
		n, ok := parseTTL(ttl)
		if !ok {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-TTL wants a non-negative integer of seconds")
			return
		}
		c.TTL = &n
	}
	if exp != "" {
		if _, err := time.Parse(time.RFC3339Nano, exp); err != nil {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Expires-At wants an RFC 3339 time")
			return
		}
		c.ExpiresAt = exp
	}
	body, ok := httperr.ReadBody(w, r, maxDSBody)
	if !ok {
		return
	}
	var fk *forkPlan
	if forked {
		if fk = h.planFork(w, r, name, &c, ctGiven); fk == nil {
			return // answered
		}
	}
	if len(body) > 0 {
		if c.ContentType == "application/json" {
			d, n, err := jsonBody(body)
			if err != nil {
				writeDataError(w, err)
				return
			}
			c.Data, c.Batch = d, n
		} else {
			c.Data = body // a text/* stream's is checked by the object (streamapi.CheckData)
		}
	}
	if fk != nil {
		c.Data, c.Batch = fk.join(c.ContentType, c.Data, c.Batch)
		if !h.forkRef(w, r, fk.source, name) {
			return // answered
		}
	}
	ans, err := h.sc.Create(r.Context(), name, c)
	if fk != nil {
		h.forkCreated(r.Context(), fk.source, name, ans, err)
	}
	if err != nil {
		httperr.WriteCallError(w, err)
		return
	}
	st, res := ans.Status, ans.DSResult
	if st >= 500 || ans.Code != "" {
		writeAnswer(w, ans)
		return
	}
	hd := w.Header()
	hd.Set("Stream-Next-Offset", streamapi.FormatOffset(res.Next))
	if res.Closed {
		hd.Set("Stream-Closed", "true")
	}
	if st >= 400 {
		writeAnswer(w, ans) // 409: it exists otherwise; the headers describe what exists
		return
	}
	if res.Meta != nil {
		hd.Set("Content-Type", res.Meta.ContentType)
	}
	if st == http.StatusCreated {
		hd.Set("Location", requestURL(r))
	}
	w.WriteHeader(st)
}

// requestURL is the absolute URL the client used.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

func (h *Server) appendHTTP(w http.ResponseWriter, r *http.Request, name string) {
	a := streamapi.DSAppend{Closed: closedHeader(r), StreamSeq: r.Header.Get("Stream-Seq")}
	pid, pe, ps := r.Header.Values("Producer-Id"), r.Header.Get("Producer-Epoch"), r.Header.Get("Producer-Seq")
	// Both travel as JSON strings to the object: bytes that are not UTF-8 would arrive as
	// U+FFFD, and two different ids or seqs could compare equal.
	if !utf8.ValidString(a.StreamSeq) || len(pid) > 0 && !utf8.ValidString(pid[0]) {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeInvalidUTF8, "Producer-Id and Stream-Seq must be valid UTF-8")
		return
	}
	if len(pid) > 0 || pe != "" || ps != "" {
		if len(pid) == 0 || pid[0] == "" || pe == "" || ps == "" {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Producer-Id, Producer-Epoch and Producer-Seq go together; Producer-Id is not empty")
			return
		}
		e, ok1 := parseJSInt(pe)
		s, ok2 := parseJSInt(ps)
		if !ok1 || !ok2 {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Producer-Epoch and Producer-Seq want integers from 0 to 2^53-1")
			return
		}
		a.Producer = &streamapi.Producer{ID: pid[0], Epoch: e, Seq: s}
	}
	body, ok := httperr.ReadBody(w, r, maxDSBody)
	if !ok {
		return
	}
	if len(body) == 0 && !a.Closed {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "an append needs a body (or Stream-Closed: true)")
		return
	}
	if len(body) > 0 {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "an append needs a Content-Type")
			return
		}
		if a.ContentType = streamapi.MediaType(ct); a.ContentType == "" {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "malformed Content-Type")
			return
		}
		if a.ContentType == "application/json" {
			d, n, err := jsonBody(body)
			if err != nil {
				writeDataError(w, err)
				return
			}
			if n == 0 {
				httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "an empty JSON array appends nothing")
				return
			}
			a.Data, a.Batch = d, n
		} else {
			a.Data = body
		}
	}
	rep := h.appendDS(r.Context(), name, a)
	if rep.err != nil {
		httperr.WriteCallError(w, rep.err)
		return
	}
	if rep.fail != nil {
		httperr.Write(w, rep.fail.Status, rep.fail.Code, rep.fail.Message) // the batch failed as a whole
		return
	}
	st, res := rep.ans.Status, rep.ans.DSResult
	if rep.ans.Code != "" {
		writeAnswer(w, rep.ans)
		return
	}
	hd := w.Header()
	if st != http.StatusNotFound {
		hd.Set("Stream-Next-Offset", streamapi.FormatOffset(res.Next))
	}
	if res.Closed {
		hd.Set("Stream-Closed", "true")
	}
	setU := func(k string, v *uint64) {
		if v != nil {
			hd.Set(k, strconv.FormatUint(*v, 10))
		}
	}
	setU("Producer-Epoch", res.ProducerEpoch)
	setU("Producer-Seq", res.ProducerSeq)
	setU("Producer-Expected-Seq", res.ExpectedSeq)
	setU("Producer-Received-Seq", res.ReceivedSeq)
	if st >= 400 {
		writeAnswer(w, rep.ans)
		return
	}
	w.WriteHeader(st)
}

// parseJSInt reads a non-negative decimal integer of at most 2^53-1.
func parseJSInt(s string) (uint64, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= 1<<53-1
}

func (h *Server) head(w http.ResponseWriter, r *http.Request, name string) {
	st, rd, _, err := h.reads.Read(r.Context(), name, streamapi.DSReadQuery{From: 1 << 62})
	if err != nil {
		httperr.WriteCallError(w, err)
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	if st != http.StatusOK {
		w.WriteHeader(st)
		return
	}
	h.metaHeaders(hd, rd)
	hd.Set("Stream-Next-Offset", streamapi.FormatOffset(rd.Next))
	if rd.Closed {
		hd.Set("Stream-Closed", "true")
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Server) metaHeaders(hd http.Header, rd *streamapi.DSRead) {
	hd.Set("Content-Type", rd.Meta.ContentType)
	if rd.Meta.TTL != nil {
		hd.Set("Stream-TTL", strconv.FormatInt(*rd.Meta.TTL, 10))
	}
	if rd.Meta.ExpiresAt != "" {
		hd.Set("Stream-Expires-At", rd.Meta.ExpiresAt)
	}
}

// cursorEpoch and cursorInterval are the protocol's defaults for Stream-Cursor.
var cursorEpoch = time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)

const cursorInterval = 20 * time.Second

// cursor is the current interval number, strictly above the client's when it caught up.
func cursor(client string) string {
	cur := uint64(time.Since(cursorEpoch) / cursorInterval)
	if c, err := strconv.ParseUint(client, 10, 64); err == nil && c >= cur {
		cur = c + 1 + rand.Uint64N(180) // 1 to 180 intervals of jitter
	}
	return strconv.FormatUint(cur, 10)
}

// body renders records for the stream's content type: JSON mode as one array of messages.
func body(rd *streamapi.DSRead) []byte {
	var b []byte
	if !streamapi.IsJSON(rd.Meta.ContentType) {
		for _, m := range rd.Msgs {
			b = append(b, m.Data...)
		}
		return b
	}
	b = append(b, '[')
	first := true
	for _, m := range rd.Msgs {
		for _, e := range dsread.JSONMessages(m) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, e...)
		}
	}
	return append(b, ']')
}

func (h *Server) read(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	live := q.Get("live")
	if live != "" && live != "long-poll" && live != "sse" {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "live= wants long-poll or sse")
		return
	}
	var from uint64
	var now bool
	if q.Has("offset") {
		var ok bool
		if from, now, ok = streamapi.ParseOffset(q.Get("offset")); !ok || len(q["offset"]) > 1 {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "malformed offset")
			return
		}
	} else if live != "" {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "live reads need an offset")
		return
	}
	if now {
		from = 1 << 62
	}
	ctx := r.Context()
	st, rd, ans, err := h.reads.Read(ctx, name, streamapi.DSReadQuery{From: from, Touch: true})
	if err != nil {
		httperr.WriteCallError(w, err)
		return
	}
	if st != http.StatusOK {
		writeAnswer(w, ans)
		return
	}
	if now {
		from, rd.Upto = rd.Next, rd.Next
	}
	if from < rd.Meta.CreateSeq {
		from = rd.Meta.CreateSeq
	}
	if live == "sse" {
		h.protocolSSE(w, r, name, rd, from)
		return
	}
	hd := w.Header()
	h.metaHeaders(hd, rd)
	if live == "long-poll" && len(rd.Msgs) == 0 && !rd.Closed {
		rd, err = h.waitData(ctx, name, from, rd)
		if err != nil {
			httperr.WriteCallError(w, err)
			return
		}
		if rd == nil {
			return // deleted meanwhile or the client left
		}
	}
	next := rd.Upto
	if len(rd.Msgs) == 0 && now {
		next = rd.Next
	}
	upToDate := next >= rd.Next
	hd.Set("Stream-Next-Offset", streamapi.FormatOffset(next))
	if upToDate {
		hd.Set("Stream-Up-To-Date", "true")
	}
	closed := rd.Closed && upToDate
	if closed {
		hd.Set("Stream-Closed", "true")
	}
	if live != "" && !closed {
		hd.Set("Stream-Cursor", cursor(q.Get("cursor")))
	}
	if live == "long-poll" && len(rd.Msgs) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if now {
		hd.Set("Cache-Control", "no-store")
	} else {
		etag := fmt.Sprintf(`"%s:%s:%s`, url.PathEscape(name), streamapi.FormatOffset(from), streamapi.FormatOffset(next))
		if closed {
			etag += ":c"
		}
		etag += `"`
		hd.Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "*") {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if upToDate {
			hd.Set("Cache-Control", "no-store")
		} else {
			hd.Set("Cache-Control", "public, max-age=60, stale-while-revalidate=300")
		}
	}
	b := body(rd)
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// waitData waits for records at from (or closure) up to the long-poll timeout, or until
// the gateway drains, on the stream's feed. A nil result with no error means the request
// ended.
func (h *Server) waitData(ctx context.Context, name string, from uint64, rd *streamapi.DSRead) (*streamapi.DSRead, error) {
	fl, err := h.reads.Follow(ctx, name, rd, false)
	if err != nil {
		return nil, err
	}
	defer fl.Feed.Release()
	timer := time.NewTimer(h.longPoll)
	defer timer.Stop()
	for {
		ch := fl.Feed.Changed()
		// Read after taking the channel: anything delivered later closes it.
		cur, err := h.reads.ReadFollowing(ctx, fl, from)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			return rd, nil // gone meanwhile
		}
		rd = cur
		if len(rd.Msgs) > 0 || rd.Closed || rd.Upto > from {
			return rd, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return rd, nil
		case <-h.opts.Draining:
			return rd, nil
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// protocolSSE is live=sse: data and control events from from on, the first read's (rd)
// first, then the feed's, on the one event-stream loop (sse.Reader).
func (h *Server) protocolSSE(w http.ResponseWriter, r *http.Request, name string, rd *streamapi.DSRead, from uint64) {
	b64 := !streamapi.IsJSON(rd.Meta.ContentType) && !strings.HasPrefix(rd.Meta.ContentType, "text/")
	fd, err := h.reads.Follow(r.Context(), name, rd, false)
	if err != nil {
		httperr.WriteCallError(w, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	if b64 {
		hd.Set("Stream-Sse-Data-Encoding", "base64")
	}
	sr := h.events.NewReader(conns.StreamSSE, fd, &liveRender{from: from, b64: b64, cursor: r.URL.Query().Get("cursor")})
	sr.First(rd)
	// The protocol closes a response after about a minute (CDN collapsing); the client
	// reconnects from the last control event's offset.
	sr.EndAfter(sseMaxLife)
	sr.Serve(w, r, nil)
}

// liveRender renders a read as a data event (its records, base64 for binary streams) and
// a control event (the next offset, the cursor, up-to-date, closed).
type liveRender struct {
	from    uint64
	b64     bool
	cursor  string // the client's, then the last one sent
	started bool   // the first control event is out
}

var _ sse.Renderer = (*liveRender)(nil)

func (l *liveRender) From() uint64 { return l.from }

func (l *liveRender) Render(buf *bytes.Buffer, rd *streamapi.DSRead) (more, end bool) {
	from := l.from
	if len(rd.Msgs) > 0 {
		buf.WriteString("event: data\n")
		payload := body(rd)
		if l.b64 {
			payload = []byte(base64.StdEncoding.EncodeToString(payload))
		}
		sse.WriteData(buf, payload)
		buf.WriteString("\n")
	}
	next := max(rd.Upto, from)
	upToDate := next >= rd.Next
	closed := rd.Closed && upToDate
	if len(rd.Msgs) > 0 || !l.started || closed || next != from {
		ctl := map[string]any{"streamNextOffset": streamapi.FormatOffset(next)}
		if closed {
			ctl["streamClosed"] = true
		} else {
			l.cursor = cursor(l.cursor)
			ctl["streamCursor"] = l.cursor
		}
		if upToDate {
			ctl["upToDate"] = true
		}
		cb, _ := json.Marshal(ctl)
		buf.WriteString("event: control\ndata:")
		buf.Write(cb)
		buf.WriteString("\n\n")
	}
	l.started = true
	l.from = next
	return !upToDate && !closed, closed
}

// authorizeHTTP asks the hooks about a plain-HTTP request on stream name: reads (GET,
// HEAD) are subscribes, everything else publishes. A JSON append's body is shown to
// AuthorizePublish (it is put back for the handler); other bodies are passed as nil. A
// refusal answers 403 and reports false.
func (h *Server) authorizeHTTP(w http.ResponseWriter, r *http.Request, name string) bool {
	if !h.hooks.Authorizes() {
		return true
	}
	c := h.hooks.ConnInfo(r)
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		err = h.hooks.AuthorizeSubscribe(r.Context(), c, name)
	default:
		var data json.RawMessage
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			b, rerr := io.ReadAll(io.LimitReader(r.Body, h.opts.MaxBodyBytes+1))
			if rerr != nil {
				httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "reading the body: "+rerr.Error())
				return false
			}
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
			if int64(len(b)) <= h.opts.MaxBodyBytes && json.Valid(b) {
				data = b
			}
		}
		err = h.hooks.AuthorizePublish(r.Context(), c, name, data)
	}
	if err != nil {
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, err.Error())
		return false
	}
	return true
}
