package wsstream

import (
	"encoding/json"
	"testing"
)

func TestRawStringLikeUnmarshal(t *testing.T) {
	for _, in := range []string{`"a"`, `""`, `"a\"b"`, `"\u00e9"`, `1`, `null`, `{}`, ``, "\"\xff\""} {
		var want string
		werr := json.Unmarshal([]byte(in), &want)
		var got string
		ok := rawString(json.RawMessage(in), &got)
		if ok != (werr == nil) || got != want {
			t.Errorf("%s: got %q %v, want %q %v", in, got, ok, want, werr)
		}
	}
}
