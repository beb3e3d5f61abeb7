package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// publishBody is the object's /publish body for the batch's publishes not refused, built
// by hand: reflection over a map per message cost more than the rest of the gateway's part.
// A publish's data is the frame's raw JSON value, compacted (as json.Marshal of a
// RawMessage would).
func publishBody(batch []pubReq, refused []error, size int) []byte {
	b := make([]byte, 0, size+len(batch)*24+2)
	b = append(b, '[')
	for i, p := range batch {
		if refused[i] != nil {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, p.id)
		b = append(b, `,"data":`...)
		b = appendCompact(b, p.data)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendCompact appends the valid JSON v without insignificant whitespace.
func appendCompact(b []byte, v []byte) []byte {
	if bytes.IndexAny(v, " \t\r\n") < 0 {
		return append(b, v...)
	}
	buf := bytes.NewBuffer(b)
	if json.Compact(buf, v) != nil {
		return append(b, v...) // not reached: the frame was valid JSON
	}
	return buf.Bytes()
}

// publishedFrame is {"type":"published","id":..,"seq":N}.
func publishedFrame(id string, seq uint64) []byte {
	b := make([]byte, 0, len(id)+48)
	b = append(b, `{"type":"published","id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string; one of printable ASCII without characters
// to escape (the usual id) is copied, anything else is left to json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
