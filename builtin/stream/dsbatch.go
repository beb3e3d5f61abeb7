package stream

// Group commit of Durable Streams appends: a gateway coalesces the appends to one stream
// that arrive while its previous request to the object is in flight into one POST
// /ds/batch. The object applies them in order in one event, each with its own checks
// (closure, content type, producer, Stream-Seq), so their records go to the log as one
// pipelined batch and the reply leaves once all of them are durable. One append's refusal
// (a 4xx) changes nothing and does not affect the others; a failure of the event itself
// undoes all of them and answers the whole request with an error.
//
// The body carries bytes as they are, not base64 in JSON: one line of JSON heads (the
// appends without their data, each with its data's length), a newline, then the data
// back to back.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// MaxDSBatchBody bounds a POST /ds/batch body: one append of MaxBody plus its head.
const MaxDSBatchBody = MaxBody + 64<<10

// DSAnswer is one append's answer in a POST /ds/batch reply: its status and result, or,
// when Code is set, a refusal in the shape of an error body (code and message).
type DSAnswer struct {
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	DSResult
}

// dsBatchHead is one append in a batch's head line.
type dsBatchHead struct {
	DSAppend
	Len int `json:"len"`
}

// EncodeDSBatch frames appends for POST /ds/batch.
func EncodeDSBatch(as []DSAppend) ([]byte, error) {
	heads := make([]dsBatchHead, len(as))
	n := 0
	for i, a := range as {
		heads[i] = dsBatchHead{DSAppend: a, Len: len(a.Data)}
		heads[i].Data = nil
		n += len(a.Data)
	}
	h, err := json.Marshal(heads) // compact: no newline inside
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(h)+1+n)
	b = append(append(b, h...), '\n')
	for _, a := range as {
		b = append(b, a.Data...)
	}
	return b, nil
}

// decodeDSBatch reads an EncodeDSBatch body; the appends' data alias b.
func decodeDSBatch(b []byte) ([]DSAppend, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, bad("bad_batch", "batch: no head line")
	}
	var heads []dsBatchHead
	if err := json.Unmarshal(b[:i], &heads); err != nil {
		return nil, bad("bad_batch", "batch head: %v", err)
	}
	if len(heads) == 0 || len(heads) > MaxBatch {
		return nil, bad("bad_batch", "want 1 to %d appends, got %d", MaxBatch, len(heads))
	}
	data := b[i+1:]
	as := make([]DSAppend, len(heads))
	for k, h := range heads {
		if h.Len < 0 || h.Len > len(data) {
			return nil, bad("bad_batch", "append %d: length %d beyond the body", k, h.Len)
		}
		as[k] = h.DSAppend
		as[k].Data = nil
		if h.Len > 0 {
			as[k].Data = data[:h.Len:h.Len]
		}
		data = data[h.Len:]
	}
	if len(data) != 0 {
		return nil, bad("bad_batch", "batch: %d bytes after the last append", len(data))
	}
	return as, nil
}

// dsBatch is POST /ds/batch: every append in order, in this one event.
func (s *stream) dsBatch(r *http.Request) (int, any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxDSBatchBody))
	if err != nil {
		return 0, nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", "batch: " + err.Error()}
	}
	as, err := decodeDSBatch(b)
	if err != nil {
		return 0, nil, err
	}
	out := make([]DSAnswer, len(as))
	for i, a := range as {
		st, res, err := s.dsAppend(a)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				return 0, nil, err // the event fails: all of it is undone
			}
			// A refusal wrote nothing (dsAppend refuses before it appends).
			out[i] = DSAnswer{Status: ae.status, Code: ae.code, DSResult: DSResult{Message: ae.message}}
			continue
		}
		out[i] = DSAnswer{Status: st, DSResult: res}
	}
	return http.StatusOK, out, nil
}
