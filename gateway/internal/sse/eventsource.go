package sse

// EventSource (a browser's text/event-stream) on /v1/stream/{name}: one event per message,
// "id: <seq>" so that a reconnecting EventSource resumes with Last-Event-ID, with no gap
// and no duplicate. Messages of one JSON batch share a record, so theirs are "<seq>.<i>".
// sse-cluster's channels (cluster.go) are the same reader with another event shape.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/gateway/internal/conns"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/gateway/internal/feed"
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

// esStyle is what an EventSource's events look like: a browser EventSource's message
// events, or sse-cluster's (cluster.go).
type esStyle int

const (
	esMessages esStyle = iota
	esClusterEvents
)

func (s esStyle) render() esEvent {
	if s == esClusterEvents {
		return clusterRender
	}
	return messageEvent
}

// codec is the feed codec of a record's events in this style, rendered once per gateway.
func (s esStyle) codec(c codecs) *feed.Codec {
	if s == esClusterEvents {
		return c.esCluster
	}
	return c.esMessage
}

func messageEvent(buf *bytes.Buffer, id string, msg json.RawMessage) {
	buf.WriteString("id: " + id + "\nevent: message\n")
	WriteData(buf, msg)
	buf.WriteByte('\n')
}

// ServeEventSource streams name's messages to a browser's EventSource. Without
// Last-Event-ID it starts at the first retained message.
func (h *Server) ServeEventSource(w http.ResponseWriter, r *http.Request, name string) {
	h.eventSource(w, r, name, false, esMessages, nil)
}

// eventSource serves an event stream from the first retained message, or from the tail
// when live (sse-cluster never replayed history); done (when not nil) is called once it
// ended, which may be after eventSource returned (a connection taken off net/http,
// reader.go).
func (h *Server) eventSource(w http.ResponseWriter, r *http.Request, name string, live bool, style esStyle, done func()) {
	handedOff := false
	if done != nil {
		defer func() {
			if !handedOff {
				done()
			}
		}()
	}
	ctx := r.Context()
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
	// The stream's feed (its start makes sure the log exists), then one read of the
	// stream's object, shared by the EventSources opening it meanwhile: whether it exists,
	// its configuration and its tail. Every message comes from the feed.
	cctx, cancel := context.WithTimeout(ctx, h.opts.RequestTimeout)
	f, err := h.streams.Acquire(cctx, name)
	cancel()
	if err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, err.Error())
		return
	}
	defer func() {
		if !handedOff {
			f.Release()
		}
	}()
	st, rd, err := h.esOpens.read(ctx, h, name)
	if err != nil || st != http.StatusOK {
		httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, "reading the stream's tail failed")
		return
	}
	fd := dsread.NewFollow(f, name, rd, true)
	if live {
		// The starting point is fixed before the first byte goes out: a message published
		// once the client sees the response reaches it.
		from = rd.Next
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	handedOff = true // the reader releases the feed and calls done when it ends
	sr := h.NewReader(conns.EventSource, fd, &esRender{fd: fd, from: from, seen: seen, event: style.render(), codec: style.codec(h.codecs)})
	sr.done = done
	sr.Serve(w, r, []byte("retry: "+strconv.Itoa(sseRetryMs)+"\n\n"))
}

// WriteData writes payload as data: lines (a line break in the payload starts a new
// line, which the reader joins back with "\n").
func WriteData(buf *bytes.Buffer, payload []byte) {
	s := strings.ReplaceAll(strings.ReplaceAll(string(payload), "\r\n", "\n"), "\r", "\n")
	for _, line := range strings.Split(s, "\n") {
		// "data:" then the line; a line that starts with a space gets one more, which the
		// reader strips.
		buf.WriteString("data:")
		if strings.HasPrefix(line, " ") {
			buf.WriteByte(' ')
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
}
