package wsstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// frameFields splits a client frame into its raw top-level fields (streamapi.Fields); nil
// when it is not one valid JSON object.
func frameFields(data []byte) map[string]json.RawMessage { return streamapi.Fields(data) }

// rawString decodes the raw JSON value raw into *s when it is a string; one without
// escapes (the usual id or type) needs no decoder.
func rawString(raw json.RawMessage, s *string) bool {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		*s = string(raw[1 : len(raw)-1])
		return true
	}
	return json.Unmarshal(raw, s) == nil
}

// notAnObject says why frameFields refused a frame: its code and, in words for the client,
// the reason.
func notAnObject(data []byte) (code, msg string) {
	switch {
	case !utf8.Valid(data):
		return streamapi.CodeInvalidUTF8, "a frame is JSON text; this one is not valid UTF-8 (RFC 8259)"
	case streamapi.Depth(data) > streamapi.MaxDepth:
		return streamapi.CodeBadJSON, fmt.Sprintf("a frame is one JSON object nested at most %d levels deep", streamapi.MaxDepth)
	case !json.Valid(data):
		return streamapi.CodeBadJSON, "a frame is one JSON object; this one is not valid JSON"
	}
	return streamapi.CodeBadJSON, "a frame is one JSON object, not an array, a string, a number or a literal"
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
