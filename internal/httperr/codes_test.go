package httperr_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// codeSources are the files that define error codes a client can see: the constants named
// Code* in the Stream protocol's contract and in this package, and the subscription API's
// (sub*) in the gateway.
var codeSources = []struct {
	dir, prefix string
}{
	{"../../builtin/stream/streamapi", "Code"},
	{".", "Code"},
	{"../../gateway/internal/dssubs", "sub"},
}

// constants returns the string constants named prefix* defined in dir with a literal value,
// as value → "file:Name".
func constants(t *testing.T, dir, prefix string, into map[string][]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fs := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue // an alias of another package's code (httperr's of streamapi's)
					}
					v, _ := strconv.Unquote(lit.Value)
					into[v] = append(into[v], filepath.Base(name)+":"+id.Name)
				}
			}
		}
	}
}

// TestErrorCodesAreDocumented walks every error code constant: each is spelled once (a
// code shared by two packages is defined in one and taken by the other), each is in a
// table of docs/errors.md, and each code a table lists is a constant (client-made codes
// are described in prose, not in the tables).
func TestErrorCodesAreDocumented(t *testing.T) {
	defined := map[string][]string{}
	for _, s := range codeSources {
		constants(t, s.dir, s.prefix, defined)
	}
	if len(defined) < 40 {
		t.Fatalf("found only %d codes: the walk is broken", len(defined))
	}
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("^\\| `([^`]+)` \\|")
	for _, line := range strings.Split(string(doc), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			documented[m[1]] = true
		}
	}
	for code, where := range defined {
		if len(where) > 1 {
			t.Errorf("code %q is defined %d times (%v): define it once and refer to it", code, len(where), where)
		}
		if !documented[code] {
			t.Errorf("code %q (%v) is not in a table of docs/errors.md", code, where)
		}
	}
	var stray []string
	for code := range documented {
		if defined[code] == nil {
			stray = append(stray, code)
		}
	}
	slices.Sort(stray)
	if len(stray) > 0 {
		t.Errorf("docs/errors.md lists codes no constant defines: %v", stray)
	}
}
