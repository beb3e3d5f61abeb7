package names

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	good := []string{"a", "room-1", "a/b/c", "A_b-9", strings.Repeat("x", MaxTokenLen),
		strings.Repeat("ab/", MaxTokens-1) + "z"}
	for _, n := range good {
		if err := Validate(n); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", "/", "a/", "/a", "a//b", "a.b", "a*", ">", "a b", "a\tb", "ü",
		strings.Repeat("x", MaxTokenLen+1), strings.Repeat("ab/", MaxTokens) + "z",
		strings.Repeat("abcdefgh/", 40)}
	for _, n := range bad {
		err := Validate(n)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", n, err)
		}
	}
}

func TestValidateClass(t *testing.T) {
	if err := ValidateClass("Counter"); err != nil {
		t.Fatal(err)
	}
	if err := ValidateClass("a/b"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}

func TestValidateStream(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "a/b": true, "__ds2": true, "x/__ds": true, "__ds": false, "__ds/x": false, "a//b": false, "": false} {
		if err := ValidateStream(name); (err == nil) != ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateStream(%q) = %v", name, err)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	c, n, ok := SplitKey(Key("Counter", "a/b"))
	if !ok || c != "Counter" || n != "a/b" {
		t.Fatalf("got %q %q %v", c, n, ok)
	}
	if Subject("a/b/c") != "a.b.c" {
		t.Fatal(Subject("a/b/c"))
	}
}

// FuzzValidate checks that every name the grammar accepts maps to a subject and KV key that
// NATS accepts without escaping, and that a refusal is valid UTF-8 whatever the name (it
// goes back to clients in JSON and text frames). Its corpus is testdata/fuzz/FuzzValidate.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"a", "a/b", "a.b", "*", ">", "a//b", " ", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := Validate(s); err != nil {
			if !errors.Is(err, ErrInvalid) || !utf8.ValidString(err.Error()) {
				t.Fatalf("Validate(%q) = %q", s, err)
			}
			return
		}
		if len(s) > MaxNameLen {
			t.Fatalf("accepted %d bytes", len(s))
		}
		for _, tok := range strings.Split(Subject(s), ".") {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("accepted %q gives bad subject token %q", s, tok)
			}
		}
		for _, c := range Key("C", s) {
			if !(c == '-' || c == '/' || c == '_' || c == '=' || c == '.' ||
				c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				t.Fatalf("accepted %q gives bad KV key", s)
			}
		}
	})
}

// TestMessagesNameRunes checks that an error names the character a person typed, not the
// first byte of its UTF-8 encoding.
func TestMessagesNameRunes(t *testing.T) {
	for name, want := range map[string]string{
		"café":    `character 'é' at offset 3`,
		"a b":     `character ' ' at offset 1`,
		"x\xffy":  `byte 0xff (not UTF-8) at offset 1`,
		"日本":      `character '日' at offset 0`,
		"ok/\x00": `character '\x00' at offset 3`,
	} {
		err := Validate(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %v, want it to say %s", name, err, want)
		}
	}
}
