package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValueEnd: each value of a valid document ends where json's decoder says it does.
func TestValueEnd(t *testing.T) {
	for _, doc := range []string{
		`"a\"b\\"`, `{"k":[1,{"x":"}"}],"e":""}`, `[[],{},"]",-1.5e3]`, `true`, `null`, `12`, `"é\u00e9"`,
	} {
		if !json.Valid([]byte(doc)) {
			t.Fatalf("test doc %q is not valid", doc)
		}
		if got := ValueEnd([]byte(doc+" ,"), 0); got != len(doc) {
			t.Errorf("ValueEnd(%q) = %d, want %d", doc, got, len(doc))
		}
	}
}

// FuzzValueEnd: on any valid document, ValueEnd spans exactly the value, and on any input
// at all it stays in range.
func FuzzValueEnd(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x\"y"]}`, `"s"`, `  7 `, `[`, `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		i := Space(b, 0)
		if i >= len(b) {
			return
		}
		end := ValueEnd(b, i)
		if end < i || end > len(b) {
			t.Fatalf("ValueEnd(%q, %d) = %d: out of range", s, i, end)
		}
		if json.Valid(b) && Space(b, end) != len(b) {
			t.Fatalf("ValueEnd(%q) = %d: the valid value does not end there", s, end)
		}
	})
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
