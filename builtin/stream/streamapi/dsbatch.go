package streamapi

// The body of POST /ds/batch carries bytes as they are, not base64 in JSON: one line of
// JSON heads (the appends without their data, each with its data's length), a newline,
// then the data back to back.

import (
	"bytes"
	"encoding/json"
)

// DSBatchContentType is the Content-Type of a POST /ds/batch body.
const DSBatchContentType = "application/x-holdfast-ds-batch"

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

// DecodeDSBatch reads an EncodeDSBatch body of 1 to MaxBatch appends; their data alias b.
func DecodeDSBatch(b []byte) ([]DSAppend, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, Errorf(CodeBadBatch, "batch: no head line")
	}
	var heads []dsBatchHead
	if err := json.Unmarshal(b[:i], &heads); err != nil {
		return nil, Errorf(CodeBadBatch, "batch head: %v", err)
	}
	if len(heads) == 0 || len(heads) > MaxBatch {
		return nil, Errorf(CodeBadBatch, "want 1 to %d appends, got %d", MaxBatch, len(heads))
	}
	data := b[i+1:]
	as := make([]DSAppend, len(heads))
	for k, h := range heads {
		if h.Len < 0 || h.Len > len(data) {
			return nil, Errorf(CodeBadBatch, "append %d: length %d beyond the body", k, h.Len)
		}
		as[k] = h.DSAppend
		as[k].Data = nil
		if h.Len > 0 {
			as[k].Data = data[:h.Len:h.Len]
		}
		data = data[h.Len:]
	}
	if len(data) != 0 {
		return nil, Errorf(CodeBadBatch, "batch: %d bytes after the last append", len(data))
	}
	return as, nil
}
