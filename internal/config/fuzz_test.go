package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that every error it returns is placed on a line
// of the input, and that what it accepts validates again and parses the same way twice.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("routes = [{pattern = \"/a/{name}\", object = \"A\"}]\n[durable_objects]\nbindings = [{name = \"A\", class_name = \"A\"}]\n"))
	f.Add([]byte("[a.\"b.c\"]\nd = 1\n[[x.y]]\n[[x.y.z]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang would otherwise stall the fuzzer silently instead of saving the input.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Parse hangs on %q", data)) })
		defer watchdog.Stop()
		c, err := Parse("f.toml", data)
		if err != nil {
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range errorsOf(t, err) {
				if e.File != "f.toml" || e.Line < 1 || e.Line > lines {
					t.Fatalf("error outside the input (%d lines): %q", lines, e.Error())
				}
			}
			if _, err2 := Parse("f.toml", data); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
		c2, err := Parse("f.toml", data)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("Parse is not deterministic: %v", err)
		}
	})
}
