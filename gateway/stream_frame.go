package gateway

import (
	"bytes"
	"encoding/json"
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
