package gateway

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/holdfast/holdfast/internal/jsonscan"
)

// frameFields splits a client frame, one JSON object, into its top-level fields without
// decoding the values: json.Unmarshal into a map allocated a map, its keys and a copy of
// every value per frame, the top cost of a publishing connection. It returns nil when data
// is not valid JSON or not an object. Like json.Unmarshal into a map, a repeated key keeps its last value.
func frameFields(data []byte) map[string]json.RawMessage {
	if !json.Valid(data) {
		return nil
	}
	i := jsonscan.Space(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	f := make(map[string]json.RawMessage, 4)
	i = jsonscan.Space(data, i+1)
	if data[i] == '}' {
		return f
	}
	for {
		// A key: data is valid JSON, so a string follows.
		end := jsonscan.StringEnd(data, i)
		key := string(data[i+1 : end-1])
		if bytes.IndexByte(data[i:end], '\\') >= 0 {
			_ = json.Unmarshal(data[i:end], &key) // valid, so it decodes
		}
		i = jsonscan.Space(data, end)
		i = jsonscan.Space(data, i+1) // ':'
		vEnd := jsonscan.ValueEnd(data, i)
		f[key] = data[i:vEnd:vEnd]
		i = jsonscan.Space(data, vEnd)
		if data[i] == '}' {
			return f
		}
		i = jsonscan.Space(data, i+1) // ','
	}
}

// rawString decodes the raw JSON value raw into *s when it is a string; one without
// escapes (the usual id or type) needs no decoder.
func rawString(raw json.RawMessage, s *string) bool {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		*s = string(raw[1 : len(raw)-1])
		return true
	}
	return json.Unmarshal(raw, s) == nil
}
