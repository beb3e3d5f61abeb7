package gateway

// EventSource (a browser's text/event-stream) on /v1/stream/{name}: one event per message,
// "id: <seq>" so that a reconnecting EventSource resumes with Last-Event-ID, with no gap
// and no duplicate. Messages of one JSON batch share a record, so theirs are "<seq>.<i>".
// sse-cluster's channels (ssecluster.go) are the same reader with another event shape.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/httperr"
)

// sseRetryMs is the reconnection delay EventSource clients are told.
const sseRetryMs = 2000

// eventID names message i of the record at seq (n messages in it).
func eventID(seq uint64, i, n int) string {
	if n <= 1 {
		return strconv.FormatUint(seq, 10)
	}
	return strconv.FormatUint(seq, 10) + "." + strconv.Itoa(i)
}

// parseEventID reads a Last-Event-ID: the next record to send and how many of its
// messages were seen (-1: none).
func parseEventID(s string) (from uint64, seen int, ok bool) {
	seqPart, idx, batch := strings.Cut(s, ".")
	n, err := strconv.ParseUint(seqPart, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if !batch {
		return n + 1, -1, true
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 {
		return 0, 0, false
	}
	return n, i, true
}

// esEvent renders one message as an SSE event.
type esEvent func(buf *bytes.Buffer, id string, msg json.RawMessage)

func messageEvent(buf *bytes.Buffer, id string, msg json.RawMessage) {
	buf.WriteString("id: " + id + "\nevent: message\n")
	writeSSEData(buf, msg)
	buf.WriteByte('\n')
}

// serveEventSource streams name's messages. Without Last-Event-ID it starts at the first
// retained message, or at the tail when live (sse-cluster never replayed history).
func (h *httpStreams) serveEventSource(w http.ResponseWriter, r *http.Request, name string, live bool) {
	h.eventSource(w, r, name, live, messageEvent, nil)
}

// eventSource serves an event stream; done (when not nil) is called once it ended, which
// may be after eventSource returned (a hijacked connection, sse_conn.go).
func (h *httpStreams) eventSource(w http.ResponseWriter, r *http.Request, name string, live bool, render esEvent, done func()) {
	handedOff := false
	if done != nil {
		defer func() {
			if !handedOff {
				done()
			}
		}()
	}
	ctx := r.Context()
	g := h.g
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	var from uint64 = 1
	seen := -1
	if last != "" {
		var ok bool
		if from, seen, ok = parseEventID(last); !ok {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Last-Event-ID: want an id this stream sent")
			return
		}
		live = false
	}
	// The log must exist before it is watched (as for a WebSocket subscriber). A watch that
	// is up watches an existing, configured log: then asking the object again (one request
	// per EventSource, queued at the stream's object) is skipped.
	if !h.watching(name) {
		cctx, cancel := context.WithTimeout(ctx, g.opts.RequestTimeout)
		ret := g.streams.retention(name)
		_, err := g.sc.Configure(cctx, name, streamapi.Config{MaxMsgs: ret.MaxMsgs, MaxBytes: ret.MaxBytes, MaxAgeMs: ret.MaxAge.Milliseconds()})
		cancel()
		if err != nil {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
			return
		}
	}
	wt, release, err := h.watch(ctx, name)
	if err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
		return
	}
	defer func() {
		if !handedOff {
			release()
		}
	}()
	if live {
		// Fix the starting point before the first byte goes out: a message published once
		// the client sees the response must reach it.
		st, rd, _, err := h.readDS(ctx, name, 1<<62, false, true) // the read answers the tail
		if err != nil || st != http.StatusOK {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, "reading the stream's tail failed")
			return
		}
		from = rd.Next
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	if h.hijackEventSource(w, r, name, wt, release, from, seen, render, done) {
		handedOff = true
		return
	}
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	_, _ = w.Write([]byte("retry: " + strconv.Itoa(sseRetryMs) + "\n\n"))
	if fl != nil {
		fl.Flush()
	}
	var buf bytes.Buffer
	for {
		ch := wt.changed()
		st, rd, _, err := h.readDS(ctx, name, from, false, true)
		if err != nil || st != http.StatusOK {
			return
		}
		buf.Reset()
		for _, m := range rd.Msgs {
			msgs := jsonMessages(m)
			for i, msg := range msgs {
				if m.Seq == from && i <= seen {
					continue
				}
				render(&buf, eventID(m.Seq, i, len(msgs)), msg)
			}
			seen = -1
		}
		if rd.Upto > from {
			from, seen = rd.Upto, -1
		}
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if from < rd.Next {
			continue // more stored than one read returns
		}
		if !h.sseWait(ctx, w, fl, ch, nil) {
			return
		}
	}
}
