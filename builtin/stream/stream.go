// Package stream is the built-in Stream class: one object per durable message stream,
// written only against the public SDK (package objects), the standard library and its own
// contract, package streamapi, which gateways import instead of this package.
//
// The stream's messages are the object's log (State.Log): seq 1, 2, 3, ... with no gaps or
// reuse; retention is the log's. Gateways read the log's JetStream stream directly for
// fan-out and talk to the object through the small internal HTTP API with JSON bodies that
// streamapi describes (routes, bodies, limits, errors).
//
// Every reply leaves once the event's writes and appends are durable (the output gate), so
// a seq in a /publish reply names a stored message. Bad input is a 400 with
// {"error":{"code":"..","message":".."}} (a streamapi.Error).
package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/objects"
)

// Class is the Stream class (streamapi.ClassName).
var Class = objects.Class{Name: streamapi.ClassName, New: func(st objects.State) objects.Object { return &stream{st: st} }}

type stream struct {
	st objects.State
	ds *dsState // the Durable Streams view (durable.go), nil until first used
}

// Storage keys.
const (
	keyState  = "state"
	keyClient = "client/"
)

func bad(code, format string, a ...any) *streamapi.Error { return streamapi.Errorf(code, format, a...) }

func (s *stream) Fetch(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ds" || strings.HasPrefix(r.URL.Path, "/ds/") {
		s.dsRoute(w, r)
		return
	}
	res, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *stream) route(r *http.Request) (any, error) {
	if strings.HasPrefix(r.URL.Path, "/group/") {
		return s.groupRoute(r) // group.go
	}
	switch r.Method + " " + r.URL.Path {
	case http.MethodPost + " " + streamapi.RoutePublish:
		return s.publish(r)
	case http.MethodGet + " " + streamapi.RouteInfo:
		return s.info(), nil
	case http.MethodPost + " " + streamapi.RouteConfigure:
		var c streamapi.Config
		if err := decode(r, &c); err != nil {
			return nil, err
		}
		return s.configure(c)
	case http.MethodPost + " " + streamapi.RouteDelete:
		var d streamapi.Trim
		if err := decode(r, &d); err != nil {
			return nil, err
		}
		if d.UpTo == nil {
			return nil, bad(streamapi.CodeBadArgs, "upTo is required")
		}
		if err := s.trim(*d.UpTo); err != nil {
			return nil, err
		}
		return s.info(), nil
	case http.MethodGet + " " + streamapi.RouteState:
		st := streamapi.State{State: json.RawMessage("null")}
		if b, ok := s.st.Storage().Get(keyState); ok {
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, err
			}
		}
		return st, nil
	case http.MethodPut + " " + streamapi.RouteState:
		return s.putState(r)
	case http.MethodPost + " " + streamapi.RouteAck:
		var acks []streamapi.Ack
		if err := decode(r, &acks); err != nil {
			return nil, err
		}
		return streamapi.Empty{}, s.ack(acks)
	case http.MethodGet + " " + streamapi.RouteClient:
		id := r.URL.Query().Get("id")
		if err := checkClient(id); err != nil {
			return nil, err
		}
		var a streamapi.Ack
		if b, ok := s.st.Storage().Get(keyClient + id); ok {
			_ = json.Unmarshal(b, &a)
		}
		a.Client = id
		return a, nil
	}
	return nil, notFound(r)
}

func (s *stream) info() streamapi.Info {
	i := s.st.Log().Info()
	return streamapi.Info{FirstSeq: i.FirstSeq, LastSeq: i.LastSeq}
}

func (s *stream) publish(r *http.Request) (any, error) {
	items, err := readPublish(r)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 || len(items) > streamapi.MaxBatch {
		return nil, bad(streamapi.CodeBadArgs, "want 1 to %d messages, got %d", streamapi.MaxBatch, len(items))
	}
	for i, it := range items {
		if len(it.Data) == 0 {
			return nil, bad(streamapi.CodeBadArgs, "message %d has no data", i)
		}
	}
	if err := s.dsCurrent(r.Context()); err != nil {
		return nil, err
	}
	if s.ds.closed {
		return nil, &streamapi.Error{Status: http.StatusConflict, Code: streamapi.CodeStreamClosed, Message: "the stream was closed (Durable Streams Stream-Closed)"}
	}
	out := make([]streamapi.Published, len(items))
	for i, it := range items {
		if !utf8.Valid(it.Data) {
			// The body is JSON (DecodePublish checked its syntax), but strict readers also
			// need it to be UTF-8 (streamapi.ValidJSON). Refused alone, storing nothing; a
			// producer's later publishes meet the hole as a seq gap.
			out[i] = streamapi.Published{ID: it.ID, Code: streamapi.CodeInvalidUTF8, Message: fmt.Sprintf("message %d is not valid UTF-8: JSON text must be (RFC 8259)", i)}
			continue
		}
		if it.Producer != nil {
			pub, err := s.publishProduced(r.Context(), it) // producer.go
			if err != nil {
				s.ds = nil // rebuild the producers from what is committed
				return nil, s.appendErr(err)
			}
			out[i] = pub
			continue
		}
		seq, err := s.st.Log().Append(it.Data, nil)
		if err != nil {
			return nil, s.appendErr(err)
		}
		out[i] = streamapi.Published{ID: it.ID, Seq: seq}
	}
	return out, nil
}

// configure makes sure the log's stream exists (readers wait on it before anyone
// published) and applies retention.
func (s *stream) configure(c streamapi.Config) (any, error) {
	if c.MaxMsgs < 0 || c.MaxBytes < 0 || c.MaxAgeMs < 0 {
		return nil, bad(streamapi.CodeBadArgs, "negative limit")
	}
	cfg := objects.LogConfig{MaxMsgs: c.MaxMsgs, MaxBytes: c.MaxBytes, MaxAge: time.Duration(c.MaxAgeMs) * time.Millisecond}
	if err := s.st.Log().Configure(cfg); err != nil {
		return nil, err
	}
	return s.info(), nil
}

func (s *stream) trim(upTo uint64) error {
	i := s.st.Log().Info()
	if upTo > i.LastSeq {
		return bad(streamapi.CodeBadArgs, "upTo %d is beyond the last seq %d", upTo, i.LastSeq)
	}
	return s.st.Log().Trim(upTo)
}

func (s *stream) putState(r *http.Request) (any, error) {
	var st streamapi.PutState
	if err := decode(r, &st); err != nil {
		return nil, err
	}
	if len(st.State) == 0 {
		return nil, bad(streamapi.CodeBadArgs, "state is required")
	}
	if !utf8.Valid(st.State) {
		return nil, bad(streamapi.CodeInvalidUTF8, "state is not valid UTF-8: JSON text must be (RFC 8259)")
	}
	if len(st.State) > streamapi.MaxStateBytes {
		return nil, &streamapi.Error{Status: http.StatusRequestEntityTooLarge, Code: streamapi.CodeTooLarge, Message: fmt.Sprintf("state of %d bytes, the limit is %d", len(st.State), streamapi.MaxStateBytes)}
	}
	rec := streamapi.State{State: st.State}
	if st.Checkpoint != nil {
		if err := s.trim(*st.Checkpoint); err != nil {
			return nil, err
		}
		rec.Checkpoint = *st.Checkpoint
	} else if b, ok := s.st.Storage().Get(keyState); ok {
		var old streamapi.State
		if json.Unmarshal(b, &old) == nil {
			rec.Checkpoint = old.Checkpoint
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := s.st.Storage().Put(keyState, b); err != nil {
		return nil, err
	}
	i := s.info()
	return streamapi.StateStored{Checkpoint: rec.Checkpoint, FirstSeq: i.FirstSeq, LastSeq: i.LastSeq}, nil
}

func (s *stream) ack(acks []streamapi.Ack) error {
	last := s.st.Log().Info().LastSeq
	for _, a := range acks {
		if err := checkClient(a.Client); err != nil {
			return err
		}
		if a.Seq > last {
			return bad(streamapi.CodeBadArgs, "client %q acks seq %d beyond the last seq %d", a.Client, a.Seq, last)
		}
	}
	for _, a := range acks {
		key := keyClient + a.Client
		var old streamapi.Ack
		if b, ok := s.st.Storage().Get(key); ok {
			_ = json.Unmarshal(b, &old)
		}
		if a.Seq <= old.Seq {
			continue // cumulative: never backwards
		}
		b, _ := json.Marshal(streamapi.Ack{Seq: a.Seq})
		if err := s.st.Storage().Put(key, b); err != nil {
			return err
		}
	}
	return nil
}

// checkClient validates a durable client id: 1 to streamapi.MaxClientID bytes of letters, digits,
// '_', '-', '.' and ':'.
func checkClient(id string) error {
	if id == "" || len(id) > streamapi.MaxClientID {
		return bad(streamapi.CodeBadClient, "client id must be 1 to %d bytes", streamapi.MaxClientID)
	}
	if i := strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':')
	}); i >= 0 {
		return bad(streamapi.CodeBadClient, "client id: character %q not allowed (letters, digits, '_', '-', '.', ':')", id[i])
	}
	return nil
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, streamapi.MaxBody))
	if err := dec.Decode(v); err != nil {
		return bad(streamapi.CodeBadJSON, "body: %v", err)
	}
	if dec.More() {
		return bad(streamapi.CodeBadJSON, "body: trailing data after the JSON value")
	}
	return nil
}

// writeError answers err: a *streamapi.Error as it is, anything else as a 500.
func writeError(w http.ResponseWriter, err error) {
	var ae *streamapi.Error
	if !errors.As(err, &ae) {
		ae = &streamapi.Error{Status: http.StatusInternalServerError, Code: streamapi.CodeInternal, Message: err.Error()}
	}
	writeJSON(w, ae.Status, ae)
}

func notFound(r *http.Request) *streamapi.Error {
	return &streamapi.Error{Status: http.StatusNotFound, Code: streamapi.CodeNotFound, Message: "no such operation: " + r.Method + " " + r.URL.Path}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding the reply"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readPublish reads a /publish body (streamapi.DecodePublish).
func readPublish(r *http.Request) ([]streamapi.PublishItem, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, streamapi.MaxBody+1))
	if err != nil {
		return nil, bad(streamapi.CodeBadJSON, "body: %v", err)
	}
	if len(body) > streamapi.MaxBody {
		return nil, bad(streamapi.CodeBadJSON, "body: over %d bytes", streamapi.MaxBody)
	}
	return streamapi.DecodePublish(body)
}
