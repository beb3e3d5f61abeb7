// Package stream is the built-in Stream class: one object per durable message stream,
// written only against the public SDK (package objects) and the standard library.
//
// The stream's messages are the object's log (State.Log): seq 1, 2, 3, ... with no gaps or
// reuse; retention is the log's. Gateways read the log's JetStream stream directly for
// fan-out and talk to the object through a small internal HTTP API with JSON bodies:
//
//	POST /publish    [{"id":"..","data":<JSON>}, ...]  -> [{"id":"..","seq":N}, ...]
//	GET  /info                                          -> {"firstSeq":F,"lastSeq":L}
//	POST /configure  {"maxMsgs":N,"maxBytes":N,"maxAgeMs":N} -> info (creates the log)
//	POST /delete     {"upTo":N}                         -> info
//	GET  /state                                         -> {"state":<JSON>|null,"checkpoint":N}
//	PUT  /state      {"state":<JSON>,"checkpoint":N}    -> {"checkpoint":N, "firstSeq", "lastSeq"}
//	POST /ack        [{"client":"id","seq":N}, ...]     -> {}
//	GET  /client?id=                                    -> {"client":"id","seq":N}
//
// Every reply leaves once the event's writes and appends are durable (the output gate), so
// a seq in a /publish reply names a stored message. Bad input is a 400 with
// {"error":{"code":"..","message":".."}}.
package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast/holdfast/objects"
)

// ClassName is the class's name.
const ClassName = "Stream"

// Limits.
const (
	// MaxStateBytes bounds the JSON state document of a stream.
	MaxStateBytes = 64 << 10
	// MaxClientID bounds a durable client id.
	MaxClientID = 128
	// MaxBatch bounds the messages of one /publish.
	MaxBatch = 1024
	// MaxBody bounds a request body.
	MaxBody = 4 << 20
)

// Class is the Stream class.
var Class = objects.Class{Name: ClassName, New: func(st objects.State) objects.Object { return &stream{st: st} }}

type stream struct {
	st objects.State
	ds *dsState // the Durable Streams view (durable.go), nil until first used
}

// Storage keys.
const (
	keyState  = "state"
	keyClient = "client/"
)

type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.message }

func bad(code, format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, code, fmt.Sprintf(format, a...)}
}

// PublishItem is one message of a /publish batch.
type PublishItem struct {
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

// Published is the answer for one PublishItem.
type Published struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// Info describes the stream's retained history: FirstSeq > LastSeq when it holds none.
type Info struct {
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
}

// Config is a /configure body: retention limits, zero for none.
type Config struct {
	MaxMsgs  int64 `json:"maxMsgs"`
	MaxBytes int64 `json:"maxBytes"`
	MaxAgeMs int64 `json:"maxAgeMs"`
}

// State is the body of GET and PUT /state.
type State struct {
	State      json.RawMessage `json:"state"`
	Checkpoint uint64          `json:"checkpoint,omitempty"`
}

// Ack is one durable client's cumulative ack.
type Ack struct {
	Client string `json:"client"`
	Seq    uint64 `json:"seq"`
}

func (s *stream) Fetch(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ds" || strings.HasPrefix(r.URL.Path, "/ds/") {
		s.dsRoute(w, r)
		return
	}
	res, err := s.route(r)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{http.StatusInternalServerError, "internal", err.Error()}
		}
		writeJSON(w, ae.status, map[string]any{"error": map[string]string{"code": ae.code, "message": ae.message}})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *stream) route(r *http.Request) (any, error) {
	if strings.HasPrefix(r.URL.Path, "/group/") {
		return s.groupRoute(r) // group.go
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /publish":
		return s.publish(r)
	case "GET /info":
		return s.info(), nil
	case "POST /configure":
		var c Config
		if err := decode(r, &c); err != nil {
			return nil, err
		}
		return s.configure(c)
	case "POST /delete":
		var d struct {
			UpTo *uint64 `json:"upTo"`
		}
		if err := decode(r, &d); err != nil {
			return nil, err
		}
		if d.UpTo == nil {
			return nil, bad("bad_args", "upTo is required")
		}
		if err := s.trim(*d.UpTo); err != nil {
			return nil, err
		}
		return s.info(), nil
	case "GET /state":
		st := State{State: json.RawMessage("null")}
		if b, ok := s.st.Storage().Get(keyState); ok {
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, err
			}
		}
		return st, nil
	case "PUT /state":
		return s.putState(r)
	case "POST /ack":
		var acks []Ack
		if err := decode(r, &acks); err != nil {
			return nil, err
		}
		return struct{}{}, s.ack(acks)
	case "GET /client":
		id := r.URL.Query().Get("id")
		if err := checkClient(id); err != nil {
			return nil, err
		}
		var a Ack
		if b, ok := s.st.Storage().Get(keyClient + id); ok {
			_ = json.Unmarshal(b, &a)
		}
		a.Client = id
		return a, nil
	}
	return nil, &apiError{http.StatusNotFound, "not_found", "no such operation: " + r.Method + " " + r.URL.Path}
}

func (s *stream) info() Info {
	i := s.st.Log().Info()
	return Info{FirstSeq: i.FirstSeq, LastSeq: i.LastSeq}
}

func (s *stream) publish(r *http.Request) (any, error) {
	items, err := readPublish(r)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, bad("bad_args", "want 1 to %d messages, got %d", MaxBatch, len(items))
	}
	for i, it := range items {
		if len(it.Data) == 0 {
			return nil, bad("bad_args", "message %d has no data", i)
		}
	}
	if err := s.dsCurrent(r.Context()); err != nil {
		return nil, err
	}
	if s.ds.closed {
		return nil, &apiError{http.StatusConflict, "stream_closed", "the stream was closed (Durable Streams Stream-Closed)"}
	}
	out := make([]Published, len(items))
	for i, it := range items {
		seq, err := s.st.Log().Append(it.Data, nil)
		if err != nil {
			if errors.Is(err, objects.ErrValueTooLarge) {
				return nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", err.Error()}
			}
			return nil, err
		}
		out[i] = Published{ID: it.ID, Seq: seq}
	}
	return out, nil
}

// configure makes sure the log's stream exists (readers wait on it before anyone
// published) and applies retention.
func (s *stream) configure(c Config) (any, error) {
	if c.MaxMsgs < 0 || c.MaxBytes < 0 || c.MaxAgeMs < 0 {
		return nil, bad("bad_args", "negative limit")
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
		return bad("bad_args", "upTo %d is beyond the last seq %d", upTo, i.LastSeq)
	}
	return s.st.Log().Trim(upTo)
}

func (s *stream) putState(r *http.Request) (any, error) {
	var st struct {
		State      json.RawMessage `json:"state"`
		Checkpoint *uint64         `json:"checkpoint"`
	}
	if err := decode(r, &st); err != nil {
		return nil, err
	}
	if len(st.State) == 0 {
		return nil, bad("bad_args", "state is required")
	}
	if len(st.State) > MaxStateBytes {
		return nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("state of %d bytes, the limit is %d", len(st.State), MaxStateBytes)}
	}
	rec := State{State: st.State}
	if st.Checkpoint != nil {
		if err := s.trim(*st.Checkpoint); err != nil {
			return nil, err
		}
		rec.Checkpoint = *st.Checkpoint
	} else if b, ok := s.st.Storage().Get(keyState); ok {
		var old State
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
	return map[string]uint64{"checkpoint": rec.Checkpoint, "firstSeq": i.FirstSeq, "lastSeq": i.LastSeq}, nil
}

func (s *stream) ack(acks []Ack) error {
	last := s.st.Log().Info().LastSeq
	for _, a := range acks {
		if err := checkClient(a.Client); err != nil {
			return err
		}
		if a.Seq > last {
			return bad("bad_args", "client %q acks seq %d beyond the last seq %d", a.Client, a.Seq, last)
		}
	}
	for _, a := range acks {
		key := keyClient + a.Client
		var old Ack
		if b, ok := s.st.Storage().Get(key); ok {
			_ = json.Unmarshal(b, &old)
		}
		if a.Seq <= old.Seq {
			continue // cumulative: never backwards
		}
		b, _ := json.Marshal(Ack{Seq: a.Seq})
		if err := s.st.Storage().Put(key, b); err != nil {
			return err
		}
	}
	return nil
}

// checkClient validates a durable client id: 1 to MaxClientID bytes of letters, digits,
// '_', '-', '.' and ':'.
func checkClient(id string) error {
	if id == "" || len(id) > MaxClientID {
		return bad("bad_client", "client id must be 1 to %d bytes", MaxClientID)
	}
	if i := strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':')
	}); i >= 0 {
		return bad("bad_client", "client id: character %q not allowed (letters, digits, '_', '-', '.', ':')", id[i])
	}
	return nil
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBody))
	if err := dec.Decode(v); err != nil {
		return bad("bad_json", "body: %v", err)
	}
	if dec.More() {
		return bad("bad_json", "body: trailing data after the JSON value")
	}
	return nil
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
