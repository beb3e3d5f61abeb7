package dshttp

import (
	"testing"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// TestLegacyRecordsReadAsText: a JSON record stored before writes were checked for UTF-8
// is read as JSON text (each bad byte U+FFFD), never passed on as it is.
func TestLegacyRecordsReadAsText(t *testing.T) {
	rd := &streamapi.DSRead{Meta: streamapi.DSMeta{ContentType: "application/json"}, Msgs: []streamapi.DSMsg{
		{Seq: 1, Data: []byte("\"\xff\xfe\"")},
		{Seq: 2, Data: []byte("[{\"k\":\"a\xc3\"},2]"), Batch: 2},
	}}
	if got := string(body(rd)); got != "[\"\uFFFD\",{\"k\":\"a\uFFFD\"},2]" {
		t.Fatalf("body %q", got)
	}
}
