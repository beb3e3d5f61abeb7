package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
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

// notAnObject says why frameFields refused a frame, in words for the client.
func notAnObject(data []byte) string {
	switch {
	case jsonscan.Depth(data) > jsonscan.MaxDepth:
		return fmt.Sprintf("a frame is one JSON object nested at most %d levels deep", jsonscan.MaxDepth)
	case !json.Valid(data):
		return "a frame is one JSON object; this one is not valid JSON"
	}
	return "a frame is one JSON object, not an array, a string, a number or a literal"
}

// argsProblem says what is wrong with a command's args without the decoder's Go wording
// ("cannot unmarshal number 1e18 into Go struct field .upTo of type uint64").
func argsProblem(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return "args must be a JSON object"
	}
	want := "a string"
	switch te.Type.Kind() {
	case reflect.Uint64, reflect.Uint:
		want = "a whole number from 0 to 18446744073709551615, written without a fraction or exponent"
	case reflect.Int64, reflect.Int:
		want = "a whole number, written without a fraction or exponent"
	}
	return fmt.Sprintf("args.%s must be %s", te.Field, want)
}
