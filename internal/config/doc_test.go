package config

import (
	"os"
	"strings"
	"testing"
)

// The examples users read must load.
func TestDocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	format := string(src)
	format = format[strings.Index(format, "// # Format"):strings.Index(format, "// # Rules")]
	var doc strings.Builder
	for line := range strings.Lines(format) {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			doc.WriteString(rest)
		}
	}
	if _, err := Parse("doc.go", []byte(doc.String())); err != nil {
		t.Errorf("the example in doc.go does not load:\n%v\n%s", err, doc.String())
	}

	md, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(md), "```toml\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("no toml example in docs/config.md")
	}
	for _, b := range blocks {
		b = b[:strings.Index(b, "```")]
		if _, err := Parse("docs/config.md", []byte(b)); err != nil {
			t.Errorf("an example in docs/config.md does not load:\n%v", err)
		}
	}
}
