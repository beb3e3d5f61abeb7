package gateway

// Drop-in sse-cluster (github.com/davidsbond/sse-cluster): GET /channel/{ch} and
// GET /channel/{ch}/client/{id} are event streams, POST /channel/{ch} publishes
// {"id","event","data","retry"}, POST /channel publishes to every channel, GET /status.
// A channel is the stream "sse/<ch>", so it works across gateways and, unlike the
// original, resumes with Last-Event-ID (ids are the stream's seqs) and sends heartbeats.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
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

// channels counts this gateway's subscribers per channel, for POST /channel and /status.
type channels struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *httpStreams) registerSSECluster() {
	cs := &channels{n: map[string]int{}}
	sub := func(w http.ResponseWriter, r *http.Request) {
		ch := r.PathValue("ch")
		if !h.cors(w, r) {
			return
		}
		if err := names.Validate(sseChannelPrefix + ch); err != nil {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, err.Error())
			return
		}
		if err := h.g.authorizeSubscribe(r.Context(), streamConnInfo(r), sseChannelPrefix+ch); err != nil {
			httperr.Write(w, http.StatusForbidden, httperr.CodeForbidden, err.Error())
			return
		}
		cs.mu.Lock()
		cs.n[ch]++
		cs.mu.Unlock()
		h.eventSource(w, r, sseChannelPrefix+ch, true, clusterRender, func() {
			cs.mu.Lock()
			if cs.n[ch]--; cs.n[ch] <= 0 {
				delete(cs.n, ch)
			}
			cs.mu.Unlock()
		})
	}
	h.g.mux.HandleFunc("GET /channel/{ch}", sub)
	h.g.mux.HandleFunc("GET /channel/{ch}/client/{id}", sub)
	h.g.mux.HandleFunc("POST /channel/{ch}", func(w http.ResponseWriter, r *http.Request) {
		h.clusterPublish(w, r, []string{r.PathValue("ch")})
	})
	h.g.mux.HandleFunc("POST /channel", func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		all := make([]string, 0, len(cs.n))
		for ch := range cs.n {
			all = append(all, ch)
		}
		cs.mu.Unlock()
		h.clusterPublish(w, r, all)
	})
	h.g.mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		list := make([]map[string]any, 0, len(cs.n))
		for ch, n := range cs.n {
			list = append(list, map[string]any{"id": ch, "clients": n})
		}
		cs.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i]["id"].(string) < list[j]["id"].(string) })
		b, _ := json.Marshal(map[string]any{"id": h.g.id, "channels": list, "members": []string{h.g.id}})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// clusterRender writes an sse-cluster event; its id is the stream seq (for resuming).
func clusterRender(buf *bytes.Buffer, id string, msg json.RawMessage) {
	var e clusterEvent
	if json.Unmarshal(msg, &e) != nil {
		e = clusterEvent{Data: msg}
	}
	buf.WriteString("id: " + id + "\n")
	if e.Event != "" {
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
	writeSSEData(buf, data)
	buf.WriteByte('\n')
}

func (h *httpStreams) clusterPublish(w http.ResponseWriter, r *http.Request, chans []string) {
	if !h.cors(w, r) {
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.g.opts.MaxBodyBytes))
	if err != nil {
		httperr.Write(w, http.StatusRequestEntityTooLarge, httperr.CodeBadRequest, "body too large")
		return
	}
	var e clusterEvent
	if err := json.Unmarshal(b, &e); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "want a JSON object {\"id\",\"event\",\"data\",\"retry\"}")
		return
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
	}
	c := streamConnInfo(r)
	for _, ch := range chans {
		if err := h.g.authorizePublish(r.Context(), c, sseChannelPrefix+ch, e.Data); err != nil {
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
	item, _ := json.Marshal([]map[string]any{{"id": e.ID, "data": json.RawMessage(msg)}})
	for _, ch := range chans {
		ctx, cancel := context.WithTimeout(r.Context(), h.g.opts.RequestTimeout)
		_, err := h.g.streamCall(ctx, sseChannelPrefix+ch, http.MethodPost, "/publish", item, nil)
		cancel()
		if err != nil {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}
