package streamapi

// A walker of JSON text already known to be valid (ValidJSON), without decoding it: the
// hot paths that split a frame or a /publish body into raw fields use it where
// json.Unmarshal into maps or structs cost more than the work itself. On invalid input the
// results are meaningless (but never out of range); check validity first.

import (
	"bytes"
	"encoding/json"
)

// space returns the index of the first byte at or after i that is not JSON white space.
func space(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at b[i] (a '"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index after the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// Fields splits data, one JSON object, into its top-level fields without decoding the
// values (a gateway reads every WebSocket frame of the stream protocol so: json.Unmarshal
// into a map allocated a map, its keys and a copy of every value per frame). It returns
// nil when data is not valid JSON (ValidJSON: invalid UTF-8 included) or not an object.
// Like json.Unmarshal into a map, a repeated key keeps its last value.
func Fields(data []byte) map[string]json.RawMessage {
	if !ValidJSON(data) {
		return nil
	}
	i := space(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	f := make(map[string]json.RawMessage, 4)
	i = space(data, i+1)
	if data[i] == '}' {
		return f
	}
	for {
		// A key: data is valid JSON, so a string follows.
		end := stringEnd(data, i)
		key := string(data[i+1 : end-1])
		if bytes.IndexByte(data[i:end], '\\') >= 0 {
			_ = json.Unmarshal(data[i:end], &key) // valid, so it decodes
		}
		i = space(data, end)
		i = space(data, i+1) // ':'
		vEnd := valueEnd(data, i)
		f[key] = data[i:vEnd:vEnd]
		i = space(data, vEnd)
		if data[i] == '}' {
			return f
		}
		i = space(data, i+1) // ','
	}
}

// MaxDepth is how deeply encoding/json lets arrays and objects nest; json.Valid refuses
// deeper documents.
const MaxDepth = 10000

// Depth is the deepest nesting of arrays and objects in b, strings skipped. Unlike the
// rest of the scanner it means something on any input: it tells a document refused for
// its depth from one refused for its syntax.
func Depth(b []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}
