package gateway

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// frameFields splits a client frame, one JSON object, into its top-level fields without
// decoding the values: json.Unmarshal into a map allocated a map, its keys and a copy of
// every value per frame, the top cost of a publishing connection. It returns nil when data
// is not valid JSON or not an object. Like json.Unmarshal into a map, a repeated key keeps its last value.
func frameFields(data []byte) map[string]json.RawMessage {
	if !json.Valid(data) {
		return nil
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	f := make(map[string]json.RawMessage, 4)
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return f
	}
	for {
		// A key: data is valid JSON, so a string follows.
		end := skipString(data, i)
		key := string(data[i+1 : end-1])
		if bytes.IndexByte(data[i:end], '\\') >= 0 {
			_ = json.Unmarshal(data[i:end], &key) // valid, so it decodes
		}
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // ':'
		vEnd := skipValue(data, i)
		f[key] = data[i:vEnd:vEnd]
		i = skipSpace(data, vEnd)
		if data[i] == '}' {
			return f
		}
		i = skipSpace(data, i+1) // ','
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
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
