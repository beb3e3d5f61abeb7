package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

// frameFields must split a frame exactly as json.Unmarshal into a map does.
func TestFrameFieldsLikeUnmarshal(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `, `null`, `[1,2]`, `"s"`, `12`, `{"a":1`, `{"a":1}x`, `{a:1}`,
		`{"type":"publish","id":"x","data":{"k":[1,{"n":"}]\""}],"e":{}}}`,
		" {\n\t\"type\" : \"ack\" ,\r\n \"seq\" : 12 , \"stream\":\"a/b\" } ",
		`{"typ\u0065":"publish","id":"a\"b","data":"q\\"}`,
		`{"a":true,"b":false,"c":null,"d":-1.5e3,"e":[],"f":[[]],"g":"}"}`,
		`{"id":"1","id":"2"}`,
		`{"data":"\u00e9\n"}`,
	} {
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			want = nil
		}
		got := frameFields([]byte(in))
		if len(got) == 0 && len(want) == 0 {
			if (got == nil) != (want == nil) {
				t.Errorf("%s: got %v, want %v", in, got, want)
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got  %q\n want %q", in, got, want)
		}
	}
}

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

func TestAppendJSONStringLikeMarshal(t *testing.T) {
	for _, s := range []string{"", "abc-123", `a"b`, `a\b`, "<&>", "é", "\x01", "\xff", "\u2028"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}
