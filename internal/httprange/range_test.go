package httprange

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	const size = 10
	r := func(start, n int64) Range { return Range{start, n} }
	tests := []struct {
		header string
		want   []Range
		err    error
	}{
		// Satisfiable.
		{"bytes=0-0", []Range{r(0, 1)}, nil},
		{"bytes=2-5", []Range{r(2, 4)}, nil},
		{"bytes=2-", []Range{r(2, 8)}, nil},
		{"bytes=5-99", []Range{r(5, 5)}, nil},
		{"bytes=5-99999999999999999999999", []Range{r(5, 5)}, nil},
		{"bytes=-3", []Range{r(7, 3)}, nil},
		{"bytes=-99", []Range{r(0, 10)}, nil},
		{"bytes=-99999999999999999999999", []Range{r(0, 10)}, nil},
		{"BYTES=1-1", []Range{r(1, 1)}, nil},
		{"bytes=0-1, 4-5", []Range{r(0, 2), r(4, 2)}, nil},
		{"bytes=0-1,,\t,4-5,", []Range{r(0, 2), r(4, 2)}, nil},
		{"bytes=20-30,1-2", []Range{r(1, 2)}, nil}, // the unsatisfiable one is dropped
		{"bytes=9-", []Range{r(9, 1)}, nil},
		// Unsatisfiable: 416.
		{"bytes=10-", nil, ErrUnsatisfiable},
		{"bytes=10-20", nil, ErrUnsatisfiable},
		{"bytes=-0", nil, ErrUnsatisfiable},
		{"bytes=99999999999999999999999-", nil, ErrUnsatisfiable},
		{"bytes=10-11,-0", nil, ErrUnsatisfiable},
		// Ignored: 200 with the whole body.
		{"", nil, nil},
		{"items=0-1", nil, nil},
		{"bytes", nil, nil},
		{"bytes=", nil, nil},
		{"bytes=,", nil, nil},
		{"bytes=--1", nil, nil},
		{"bytes=-", nil, nil},
		{"bytes=5-3", nil, nil},
		{"bytes=a-b", nil, nil},
		{"bytes=1", nil, nil},
		{"bytes=1-2-3", nil, nil},
		{"bytes=+1-2", nil, nil},
		{"bytes=-+1", nil, nil},
		{"bytes=0x1-2", nil, nil},
		{"bytes=1 -2", nil, nil},
		{"bytes=0-1,x", nil, nil},   // one malformed spec spoils the header
		{"bytes=10-,5-3", nil, nil}, // malformed beats unsatisfiable
		{"bytes=" + strings.Repeat("0-0,", MaxRanges+1), nil, nil},
	}
	for _, tt := range tests {
		got, err := Parse(tt.header, size)
		if !reflect.DeepEqual(got, tt.want) || !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q, %d) = %v, %v; want %v, %v", tt.header, size, got, err, tt.want, tt.err)
		}
	}
	if got, err := Parse("bytes="+strings.Repeat("0-0,", MaxRanges), size); err != nil || len(got) != MaxRanges {
		t.Errorf("MaxRanges ranges: %d, %v", len(got), err)
	}
}

func TestParseEmptyRepresentation(t *testing.T) {
	for header, want := range map[string]error{
		"bytes=0-":   ErrUnsatisfiable, // no first byte to start at
		"bytes=0-0":  ErrUnsatisfiable,
		"bytes=-0":   ErrUnsatisfiable,
		"bytes=-5":   nil, // satisfiable by RFC 9110, but there is nothing to cut: 200, empty
		"bytes=a":    nil,
		"bytes=0-,-": nil,
	} {
		got, err := Parse(header, 0)
		if got != nil || !errors.Is(err, want) {
			t.Errorf("Parse(%q, 0) = %v, %v; want nil, %v", header, got, err, want)
		}
	}
}

func TestContentRange(t *testing.T) {
	if got := (Range{2, 4}).ContentRange(10); got != "bytes 2-5/10" {
		t.Error(got)
	}
	if got := Unsatisfied(10); got != "bytes */10" {
		t.Error(got)
	}
}

func TestCheck(t *testing.T) {
	mod := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	at := func(d time.Duration) string { return mod.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		h    map[string]string
		want Result
	}{
		{nil, Proceed},
		{map[string]string{"If-Match": `"e1"`}, Proceed},
		{map[string]string{"If-Match": `"x", "e1"`}, Proceed},
		{map[string]string{"If-Match": `*`}, Proceed},
		{map[string]string{"If-Match": `"x"`}, PreconditionFailed},
		{map[string]string{"If-Unmodified-Since": at(0)}, Proceed},
		{map[string]string{"If-Unmodified-Since": at(-time.Hour)}, PreconditionFailed},
		{map[string]string{"If-Unmodified-Since": "yesterday"}, Proceed},
		// If-Match holds, so If-Unmodified-Since is not looked at (S3's precedence too).
		{map[string]string{"If-Match": `"e1"`, "If-Unmodified-Since": at(-time.Hour)}, Proceed},
		{map[string]string{"If-None-Match": `"e1"`}, NotModified},
		{map[string]string{"If-None-Match": `W/"e1"`}, NotModified},
		{map[string]string{"If-None-Match": `"x"`}, Proceed},
		{map[string]string{"If-Modified-Since": at(0)}, NotModified},
		{map[string]string{"If-Modified-Since": at(-time.Second)}, Proceed},
		{map[string]string{"If-Modified-Since": "garbage"}, Proceed},
		// If-None-Match decides; If-Modified-Since is not looked at.
		{map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": at(time.Hour)}, Proceed},
		{map[string]string{"If-Match": `"x"`, "If-None-Match": `"e1"`}, PreconditionFailed},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.h {
			h.Set(k, v)
		}
		if got := Check(h, "", "e1", mod); got != tt.want {
			t.Errorf("Check(%v) = %v, want %v", tt.h, got, tt.want)
		}
		cp := http.Header{}
		for k, v := range tt.h {
			cp.Set("X-Amz-Copy-Source-"+k, v)
		}
		if got := Check(cp, "X-Amz-Copy-Source-", "e1", mod); got != tt.want {
			t.Errorf("Check(copy source %v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestIfRange(t *testing.T) {
	mod := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	for v, want := range map[string]bool{
		"":                          true,
		`"e1"`:                      true,
		`"e2"`:                      false,
		`W/"e1"`:                    false, // weak tags never match
		mod.Format(http.TimeFormat): true,
		mod.Add(time.Second).Format(http.TimeFormat): false,
		"not a date": false,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("If-Range", v)
		}
		if got := IfRange(h, "e1", mod); got != want {
			t.Errorf("IfRange(%q) = %v, want %v", v, got, want)
		}
	}
}

// FuzzParse checks Parse on any header and size: no panic, every range inside the
// representation, never more than MaxRanges, and a range it returns, written back as a
// header, parses to itself. Its corpus is testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, h := range []string{"bytes=0-0", "bytes=-0", "bytes=--1", "bytes=5-3", "items=0-1", "bytes=0-1,4-", "bytes=-99999999999999999999"} {
		f.Add(h, int64(10))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		rs, err := Parse(header, size)
		if err != nil && (rs != nil || !errors.Is(err, ErrUnsatisfiable)) {
			t.Fatalf("Parse(%q, %d) = %v, %v", header, size, rs, err)
		}
		if len(rs) > MaxRanges {
			t.Fatalf("Parse(%q, %d): %d ranges", header, size, len(rs))
		}
		for _, r := range rs {
			if r.Start < 0 || r.Length < 1 || r.End() >= size || r.End() < r.Start {
				t.Fatalf("Parse(%q, %d) = %v: %v is outside the representation", header, size, rs, r)
			}
			again, err := Parse("bytes="+strconv.FormatInt(r.Start, 10)+"-"+strconv.FormatInt(r.End(), 10), size)
			if err != nil || len(again) != 1 || again[0] != r {
				t.Fatalf("%v written back parses as %v, %v", r, again, err)
			}
		}
	})
}
