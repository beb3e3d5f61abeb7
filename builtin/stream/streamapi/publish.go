package streamapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The /publish body: [{"id":"..","data":<JSON>,"producer":{"id":"..","epoch":N,"seq":N}}, ...]
// (producer only when set). AppendPublish writes it by hand and DecodePublish splits that
// shape without reflection: json.Marshal of a map per message at the gateway, and json's
// decoder matching fields and copying every value in the object, were each side's top cost
// per published message (docs/performance.md). Any other body DecodePublish reads with
// json's decoder, so both read the same bodies the same way.

// AppendPublish appends the /publish body of items to b. Each Data must be valid JSON (a
// WebSocket frame's raw value, say); it is compacted, as json.Marshal of a RawMessage would.
func AppendPublish(b []byte, items []PublishItem) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = AppendString(b, it.ID)
		b = append(b, `,"data":`...)
		b = appendCompact(b, it.Data)
		if p := it.Producer; p != nil {
			b = append(b, `,"producer":{"id":`...)
			b = AppendString(b, p.ID)
			b = append(b, `,"epoch":`...)
			b = strconv.AppendUint(b, p.Epoch, 10)
			b = append(b, `,"seq":`...)
			b = strconv.AppendUint(b, p.Seq, 10)
			b = append(b, '}')
		}
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
		return append(b, v...) // not valid JSON: the caller's mistake, left for the reader to refuse
	}
	return buf.Bytes()
}

// AppendString appends s as a JSON string exactly as json.Marshal writes it; one of
// printable ASCII without characters to escape (the usual id) is copied.
func AppendString(b []byte, s string) []byte {
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

// DecodePublish reads a /publish body. The items' Data alias body. A body that is not a
// JSON array of items is an *Error with CodeBadJSON; the items' contents (an empty batch,
// an item without data) are the object's to check.
func DecodePublish(body []byte) ([]PublishItem, error) {
	if items, ok := splitPublish(body); ok {
		return items, nil
	}
	var items []PublishItem
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&items); err != nil {
		return nil, Errorf(CodeBadJSON, "body: %v", err)
	}
	if dec.More() {
		return nil, Errorf(CodeBadJSON, "body: trailing data after the JSON value")
	}
	return items, nil
}

// plainString reports whether the valid JSON string b[i:end] decodes to its bytes as they
// are: no escapes, valid UTF-8.
func plainString(b []byte, i, end int) bool {
	return b[i] == '"' && bytes.IndexByte(b[i:end], '\\') < 0 && utf8.Valid(b[i+1:end-1])
}

// splitPublish splits a valid body of AppendPublish's shape; ok is false for anything else.
func splitPublish(b []byte) (items []PublishItem, ok bool) {
	if !json.Valid(b) {
		return nil, false
	}
	i := space(b, 0)
	if b[i] != '[' {
		return nil, false
	}
	i = space(b, i+1)
	if b[i] == ']' {
		return []PublishItem{}, space(b, i+1) == len(b)
	}
	items = make([]PublishItem, 0, bytes.Count(b, []byte(`"data":`)))
	var prods []Producer // the items' producers, one allocation
	for {
		if b[i] != '{' {
			return nil, false
		}
		var it PublishItem
		var seen int
		i = space(b, i+1)
		for b[i] != '}' {
			// A key, then ':', then a value; the body is valid JSON.
			end := stringEnd(b, i)
			key := b[i+1 : end-1]
			i = space(b, space(b, end)+1)
			vEnd := valueEnd(b, i)
			switch string(key) {
			case "id":
				if !plainString(b, i, vEnd) || seen&1 != 0 {
					return nil, false
				}
				it.ID, seen = string(b[i+1:vEnd-1]), seen|1
			case "data":
				if seen&2 != 0 || string(b[i:vEnd]) == "null" {
					return nil, false
				}
				it.Data, seen = b[i:vEnd:vEnd], seen|2
			case "producer":
				if prods == nil {
					prods = make([]Producer, 0, cap(items))
				}
				var last string // a batch's items mostly share their producer: one id string
				if len(prods) > 0 {
					last = prods[len(prods)-1].ID
				}
				p, ok := splitProducer(b[i:vEnd], last)
				if !ok || seen&4 != 0 || len(prods) == cap(prods) {
					return nil, false
				}
				prods = append(prods, p)
				it.Producer, seen = &prods[len(prods)-1], seen|4
			default:
				return nil, false
			}
			i = space(b, vEnd)
			if b[i] == ',' {
				i = space(b, i+1)
			}
		}
		items = append(items, it)
		i = space(b, i+1)
		if b[i] == ']' {
			return items, space(b, i+1) == len(b)
		}
		i = space(b, i+1) // ','
	}
}

// splitProducer splits {"id":"..","epoch":N,"seq":N}, each key once, N plain digits; an
// id equal to last is last.
func splitProducer(b []byte, last string) (Producer, bool) {
	var p Producer
	if b[0] != '{' {
		return p, false
	}
	var seen int
	i := space(b, 1)
	for b[i] != '}' {
		end := stringEnd(b, i)
		key := b[i+1 : end-1]
		i = space(b, space(b, end)+1)
		vEnd := valueEnd(b, i)
		var bit int
		switch string(key) {
		case "id":
			if !plainString(b, i, vEnd) {
				return p, false
			}
			if id := b[i+1 : vEnd-1]; string(id) == last {
				p.ID = last
			} else {
				p.ID = string(id)
			}
			bit = 1
		case "epoch", "seq":
			n, err := strconv.ParseUint(string(b[i:vEnd]), 10, 64) // digits only: no sign, fraction or exponent
			if err != nil {
				return p, false
			}
			if key[0] == 'e' {
				p.Epoch, bit = n, 2
			} else {
				p.Seq, bit = n, 4
			}
		default:
			return p, false
		}
		if seen&bit != 0 {
			return p, false
		}
		seen |= bit
		i = space(b, vEnd)
		if b[i] == ',' {
			i = space(b, i+1)
		}
	}
	return p, seen == 7
}
