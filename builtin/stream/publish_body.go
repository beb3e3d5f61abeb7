package stream

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/holdfast/holdfast/internal/jsonscan"
)

// readPublish reads a /publish body, [{"id":"..","data":<JSON>}, ...]. Bodies in the shape
// the gateway writes (keys exactly "id" and "data", an id without escapes) are split
// without reflection: json's decoder, matching fields and copying every value, was the
// object's top cost per published message. Any other body goes through decode, so both
// read the same bodies the same way.
func readPublish(r *http.Request) ([]PublishItem, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, bad("bad_json", "body: %v", err)
	}
	if len(body) > MaxBody {
		return nil, bad("bad_json", "body: over %d bytes", MaxBody)
	}
	if items, ok := splitPublish(body); ok {
		return items, nil
	}
	var items []PublishItem
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&items); err != nil {
		return nil, bad("bad_json", "body: %v", err)
	}
	if dec.More() {
		return nil, bad("bad_json", "body: trailing data after the JSON value")
	}
	return items, nil
}

// splitPublish splits a valid body of the gateway's shape; ok is false for anything else.
func splitPublish(b []byte) (items []PublishItem, ok bool) {
	if !json.Valid(b) {
		return nil, false
	}
	i := jsonscan.Space(b, 0)
	if b[i] != '[' {
		return nil, false
	}
	i = jsonscan.Space(b, i+1)
	if b[i] == ']' {
		return []PublishItem{}, jsonscan.Space(b, i+1) == len(b)
	}
	items = make([]PublishItem, 0, bytes.Count(b, []byte(`"data":`)))
	for {
		if b[i] != '{' {
			return nil, false
		}
		var it PublishItem
		var seen int
		i = jsonscan.Space(b, i+1)
		for b[i] != '}' {
			// A key, then ':', then a value; data is valid JSON.
			end := jsonscan.StringEnd(b, i)
			key := b[i+1 : end-1]
			i = jsonscan.Space(b, jsonscan.Space(b, end)+1)
			vEnd := jsonscan.ValueEnd(b, i)
			switch string(key) {
			case "id":
				if b[i] != '"' || bytes.IndexByte(b[i:vEnd], '\\') >= 0 || seen&1 != 0 {
					return nil, false
				}
				it.ID, seen = string(b[i+1:vEnd-1]), seen|1
			case "data":
				if seen&2 != 0 || string(b[i:vEnd]) == "null" {
					return nil, false
				}
				it.Data, seen = b[i:vEnd:vEnd], seen|2
			default:
				return nil, false
			}
			i = jsonscan.Space(b, vEnd)
			if b[i] == ',' {
				i = jsonscan.Space(b, i+1)
			}
		}
		items = append(items, it)
		i = jsonscan.Space(b, i+1)
		if b[i] == ']' {
			return items, jsonscan.Space(b, i+1) == len(b)
		}
		i = jsonscan.Space(b, i+1) // ','
	}
}
