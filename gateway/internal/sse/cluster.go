package sse

// Drop-in sse-cluster (github.com/davidsbond/sse-cluster): GET /channel/{ch} and
// GET /channel/{ch}/client/{id} are event streams, POST /channel/{ch} publishes
// {"id","event","data","retry"}, POST /channel publishes to every channel, GET /status.
// A channel is the stream "sse/<ch>", so it works across gateways and, unlike the
// original, resumes with Last-Event-ID (ids are the stream's seqs) and sends heartbeats.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/streamhub"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
)

// sseChannelPrefix is the stream name prefix of sse-cluster channels.
const sseChannelPrefix = "sse/"

// clusterEvent is sse-cluster's published event.
type clusterEvent struct {
	ID    string          `json:"id,omitempty"`
	Event string          `json:"event,omitempty"`
	Data  json.RawMessage `json:"data"`
	Retry int             `json:"retry,omitempty"`
}

// channels counts this gateway's subscribers per channel, for POST /channel and /status
// (which add up every gateway's).
type channels struct {
	mu sync.Mutex
	n  map[string]int
}

// ServeChannel is GET /channel/{ch} and GET /channel/{ch}/client/{id}: the channel's
// events from now on (or from Last-Event-ID).
func (h *Server) ServeChannel(w http.ResponseWriter, r *http.Request) {
	cs := h.channels
	ch := r.PathValue("ch")
	streamhub.SecurityHeaders(w.Header())
	if err := names.Validate(sseChannelPrefix + ch); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, err.Error())
		return
	}
	if err := h.hooks.AuthorizeSubscribe(r.Context(), h.hooks.ConnInfo(r), sseChannelPrefix+ch); err != nil {
		httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, err.Error())
		return
	}
	cs.mu.Lock()
	cs.n[ch]++
	cs.mu.Unlock()
	h.eventSource(w, r, sseChannelPrefix+ch, true, esClusterEvents, func() {
		cs.mu.Lock()
		if cs.n[ch]--; cs.n[ch] <= 0 {
			delete(cs.n, ch)
		}
		cs.mu.Unlock()
	})
}

// Publish is POST /channel/{ch}: one event to the channel.
func (h *Server) Publish(w http.ResponseWriter, r *http.Request) {
	h.clusterPublish(w, r, []string{r.PathValue("ch")})
}

// PublishAll is POST /channel: one event to every channel with subscribers on any gateway.
func (h *Server) PublishAll(w http.ResponseWriter, r *http.Request) {
	_, counts := h.clusterChannels(r.Context(), h.channels)
	all := make([]string, 0, len(counts))
	for ch := range counts {
		all = append(all, ch)
	}
	sort.Strings(all)
	h.clusterPublish(w, r, all)
}

// ServeStatus is GET /status: the gateways and their channels' subscribers.
func (h *Server) ServeStatus(w http.ResponseWriter, r *http.Request) {
	members, counts := h.clusterChannels(r.Context(), h.channels)
	list := make([]map[string]any, 0, len(counts))
	for ch, n := range counts {
		list = append(list, map[string]any{"id": ch, "clients": n})
	}
	sort.Slice(list, func(i, j int) bool { return list[i]["id"].(string) < list[j]["id"].(string) })
	b, _ := json.Marshal(map[string]any{"id": h.id, "channels": list, "members": members})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// snapshot copies this gateway's channel counts.
func (cs *channels) snapshot() map[string]int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return maps.Clone(cs.n)
}

// answerChannels answers the other gateways' /status and POST /channel with this
// gateway's channels, until ctx ends.
func (h *Server) answerChannels(ctx context.Context) {
	cs := h.channels
	sub, err := h.opts.Conn.Subscribe(wire.SSEChannelsSubject, func(m *nats.Msg) {
		b, _ := json.Marshal(wire.SSEChannels{Gateway: h.id, Channels: cs.snapshot()})
		_ = m.Respond(b)
	})
	if err != nil {
		h.opts.Logger.Warn("sse-cluster: other gateways will not see this gateway's channels", "err", err)
		return
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
}

// sseGatherTimeout bounds how long /status and POST /channel wait for the other gateways.
const sseGatherTimeout = 500 * time.Millisecond

// clusterChannels asks every gateway for its channels, as the original's gossip made
// /status and POST /channel cluster-wide. It waits for one answer per gateway holding a
// presence key, or sseGatherTimeout; a gateway that does not answer in time is left out
// of members (and its channels out of the counts). Without NATS it answers for this
// gateway alone.
func (h *Server) clusterChannels(ctx context.Context, cs *channels) (members []string, counts map[string]int) {
	nc := h.opts.Conn
	counts = map[string]int{}
	seen := map[string]bool{}
	add := func(a wire.SSEChannels) {
		seen[a.Gateway] = true
		members = append(members, a.Gateway)
		for ch, n := range a.Channels {
			counts[ch] += n
		}
	}
	defer func() {
		if !seen[h.id] {
			add(wire.SSEChannels{Gateway: h.id, Channels: cs.snapshot()})
		}
		sort.Strings(members)
	}()
	if !h.opts.Cluster.Ready() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sseGatherTimeout)
	defer cancel()
	expect := map[string]bool{}
	if ids, err := h.opts.Cluster.Gateways(ctx); err == nil {
		for _, id := range ids {
			expect[id] = true
		}
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(wire.SSEChannelsSubject, inbox, nil); err != nil {
		return
	}
	for len(expect) == 0 || !allSeen(expect, seen) {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return
		}
		var a wire.SSEChannels
		if json.Unmarshal(m.Data, &a) != nil || a.Gateway == "" || seen[a.Gateway] {
			continue
		}
		add(a)
	}
	return
}

func allSeen(want, seen map[string]bool) bool {
	for k := range want {
		if !seen[k] {
			return false
		}
	}
	return true
}

// clusterRender writes an sse-cluster event; its id is the stream seq (for resuming).
func clusterRender(buf *bytes.Buffer, id string, msg json.RawMessage) {
	var e clusterEvent
	if json.Unmarshal(msg, &e) != nil {
		e = clusterEvent{Data: msg}
	}
	buf.WriteString("id: " + id + "\n")
	if e.Event != "" && !strings.ContainsAny(e.Event, "\r\n") { // POST refuses those; older records may hold them
		buf.WriteString("event: " + e.Event + "\n")
	}
	if e.Retry > 0 {
		buf.WriteString("retry: " + strconv.Itoa(e.Retry) + "\n")
	}
	data := []byte(e.Data)
	var s string
	if json.Unmarshal(e.Data, &s) == nil {
		data = []byte(s)
	}
	WriteData(buf, data)
	buf.WriteByte('\n')
}

func (h *Server) clusterPublish(w http.ResponseWriter, r *http.Request, chans []string) {
	streamhub.SecurityHeaders(w.Header())
	b, ok := httperr.ReadBody(w, r, h.opts.MaxBodyBytes)
	if !ok {
		return
	}
	if !utf8.Valid(b) { // json.Unmarshal would turn it into U+FFFD, and Data keeps it raw
		httperr.Write(w, http.StatusBadRequest, httperr.CodeInvalidUTF8, "the body is not valid UTF-8: JSON text must be (RFC 8259)")
		return
	}
	var e clusterEvent
	if err := json.Unmarshal(b, &e); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadJSON, "want a JSON object {\"id\",\"event\",\"data\",\"retry\"}")
		return
	}
	if strings.ContainsAny(e.Event, "\r\n") {
		// An event name is one line of the event stream: a line break would let a publisher
		// write other fields (id:, data:) into every subscriber's stream.
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "event must be one line: no CR or LF")
		return
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
	}
	c := h.hooks.ConnInfo(r)
	for _, ch := range chans {
		if err := h.hooks.AuthorizePublish(r.Context(), c, sseChannelPrefix+ch, e.Data); err != nil {
			httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, err.Error())
			return
		}
	}
	for _, ch := range chans {
		if err := names.Validate(sseChannelPrefix + ch); err != nil {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, err.Error())
			return
		}
	}
	msg, _ := json.Marshal(e)
	item := []streamapi.PublishItem{{ID: e.ID, Data: msg}}
	for _, ch := range chans {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.RequestTimeout)
		out, err := h.sc.Publish(ctx, sseChannelPrefix+ch, item)
		cancel()
		if err != nil {
			httperr.WriteCallError(w, err)
			return
		}
		if p := out[0]; p.Code != "" {
			httperr.Write(w, http.StatusBadRequest, p.Code, p.Message) // the stream stored nothing
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}
