package streamapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestValueEnd: each value of a valid document ends where json's decoder says it does.
func TestValueEnd(t *testing.T) {
	for _, doc := range []string{
		`"a\"b\\"`, `{"k":[1,{"x":"}"}],"e":""}`, `[[],{},"]",-1.5e3]`, `true`, `null`, `12`, `"é\u00e9"`,
	} {
		if !json.Valid([]byte(doc)) {
			t.Fatalf("test doc %q is not valid", doc)
		}
		if got := valueEnd([]byte(doc+" ,"), 0); got != len(doc) {
			t.Errorf("valueEnd(%q) = %d, want %d", doc, got, len(doc))
		}
	}
}

// FuzzValueEnd: on any valid document, valueEnd spans exactly the value, and on any input
// at all it stays in range.
func FuzzValueEnd(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x\"y"]}`, `"s"`, `  7 `, `[`, `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		i := space(b, 0)
		if i >= len(b) {
			return
		}
		end := valueEnd(b, i)
		if end < i || end > len(b) {
			t.Fatalf("valueEnd(%q, %d) = %d: out of range", s, i, end)
		}
		if json.Valid(b) && space(b, end) != len(b) {
			t.Fatalf("valueEnd(%q) = %d: the valid value does not end there", s, end)
		}
	})
}

// Fields must split a frame exactly as json.Unmarshal into a map does.
func TestFieldsLikeUnmarshal(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `, `null`, `[1,2]`, `"s"`, `12`, `{"a":1`, `{"a":1}x`, `{a:1}`,
		`{"type":"publish","id":"x","data":{"k":[1,{"n":"}]\""}],"e":{}}}`,
		" {\n\t\"type\" : \"ack\" ,\r\n \"seq\" : 12 , \"stream\":\"a/b\" } ",
		`{"typ\u0065":"publish","id":"a\"b","data":"q\\"}`,
		`{"a":true,"b":false,"c":null,"d":-1.5e3,"e":[],"f":[[]],"g":"}"}`,
		`{"id":"1","id":"2"}`,
		`{"data":"\u00e9\n"}`,
	} {
		checkFields(t, in)
	}
}

func checkFields(t *testing.T, in string) {
	t.Helper()
	var want map[string]json.RawMessage
	if err := json.Unmarshal([]byte(in), &want); err != nil || !utf8.ValidString(in) {
		want = nil // Fields refuses invalid UTF-8, which json.Unmarshal replaces with U+FFFD
	}
	got := Fields([]byte(in))
	if len(got) == 0 && len(want) == 0 {
		if (got == nil) != (want == nil) {
			t.Errorf("%q: got %v, want %v", in, got, want)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q:\n got  %q\n want %q", in, got, want)
	}
}

// FuzzFields: Fields reads every input as json.Unmarshal into a map does, and refuses
// what is not valid UTF-8 (ValidJSON).
func FuzzFields(f *testing.F) {
	for _, s := range []string{`{"type":"publish","id":"1","data":{"a":[1]}}`, `{"a\u0062":1,"ab":2}`, `{}`, `[]`, `{"a":`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFields(t, s) })
}

// TestDepth: Depth counts nesting outside strings, and json.Valid refuses exactly the
// documents deeper than MaxDepth.
func TestDepth(t *testing.T) {
	for doc, want := range map[string]int{`1`: 0, `{}`: 1, `[[],[[]]]`: 3, `{"a":"[[[["}`: 1, `"\"["`: 0, `[[[`: 3} {
		if got := Depth([]byte(doc)); got != want {
			t.Errorf("Depth(%q) = %d, want %d", doc, got, want)
		}
	}
	for _, n := range []int{MaxDepth, MaxDepth + 1} {
		doc := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		if got := Depth(doc); got != n || json.Valid(doc) != (n <= MaxDepth) {
			t.Errorf("%d deep: Depth %d, json.Valid %v", n, got, json.Valid(doc))
		}
	}
}

// BenchmarkValidJSON: what checking UTF-8 adds to checking JSON syntax, on a publish frame
// of the usual size and on one of 4 KiB (one scan each).
func BenchmarkValidJSON(b *testing.B) {
	small := []byte(`{"type":"publish","id":"17","data":{"user":"u123","text":"hello there, a short message é","n":12345}}`)
	big := []byte(`{"type":"publish","id":"17","data":{"text":"` + strings.Repeat("lorem ipsum dolor sit amet é ", 140) + `"}}`)
	for _, c := range []struct {
		name string
		doc  []byte
	}{{"frame", small}, {"4KiB", big}} {
		b.Run(c.name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			for b.Loop() {
				_ = json.Valid(c.doc)
			}
		})
		b.Run(c.name+"/ValidJSON", func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			for b.Loop() {
				_ = ValidJSON(c.doc)
			}
		})
		b.Run(c.name+"/Fields", func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			b.ReportAllocs()
			for b.Loop() {
				_ = Fields(c.doc)
			}
		})
	}
}
