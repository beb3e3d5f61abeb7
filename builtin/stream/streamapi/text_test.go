package streamapi

import (
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"
)

func TestValidJSONAndCheckData(t *testing.T) {
	for _, c := range []struct {
		ct, data string
		code     string // "" when accepted
	}{
		{"application/json", `{"a":"é"}`, ""},
		{"application/json", `"\ud800"`, ""}, // an escaped lone surrogate is ASCII text: RFC 8259's grammar allows it
		{"application/json", "\"\xff\xfe\"", CodeInvalidUTF8},
		{"application/json", "{\"k\xc3\":1}", CodeInvalidUTF8},
		{"application/json", `{`, CodeBadJSON},
		{"application/json", "", ""}, // no data: a create without a body
		{"text/plain", "caf\xc3\xa9", ""},
		{"text/plain", "caf\xe9", CodeInvalidUTF8},
		{"text/csv", "\xed\xa0\x80", CodeInvalidUTF8}, // an encoded surrogate is not UTF-8
		{"application/octet-stream", "\xff\x00\xfe", ""},
		{"application/x-protobuf", "\x80", ""},
	} {
		err := CheckData(c.ct, []byte(c.data))
		if code := ""; err != nil {
			code = err.Code
			if code != c.code || err.Status != http.StatusBadRequest {
				t.Errorf("%s %q: %d %s, want %s", c.ct, c.data, err.Status, code, c.code)
			}
		} else if c.code != "" {
			t.Errorf("%s %q: accepted, want %s", c.ct, c.data, c.code)
		}
		if c.ct == "application/json" && c.data != "" && ValidJSON([]byte(c.data)) != (c.code == "") {
			t.Errorf("ValidJSON(%q) = %v", c.data, !(c.code == ""))
		}
	}
}

func TestIsMessage(t *testing.T) {
	if IsMessage(nil) || IsMessage([]byte{}) || !IsMessage([]byte("0")) {
		t.Fatal("a record is a message when it has data")
	}
}

func TestErrorCodes(t *testing.T) {
	for st, want := range map[int]string{400: CodeBadRequest, 401: CodeBadRequest, 403: CodeForbidden, 404: CodeNotFound, 405: CodeMethodNotAllowed,
		409: CodeConflict, 410: CodeGone, 413: CodeTooLarge, 415: CodeBadRequest, 500: CodeInternal, 502: CodeInternal, 503: CodeUnavailable} {
		if got := CodeForStatus(st); got != want {
			t.Errorf("CodeForStatus(%d) = %s, want %s", st, got, want)
		}
	}
	for _, c := range []struct {
		a    DSAnswer
		want string
	}{
		{DSAnswer{Status: 400, Code: CodeInvalidUTF8}, CodeInvalidUTF8},
		{DSAnswer{Status: 409, DSResult: DSResult{Reason: CodeStreamClosed}}, CodeStreamClosed},
		{DSAnswer{Status: 404}, CodeNotFound},
	} {
		if got := c.a.ErrorCode(); got != c.want {
			t.Errorf("%+v: %s, want %s", c.a, got, c.want)
		}
	}
}

func TestValidText(t *testing.T) {
	for in, want := range map[string]string{`{"a":"é"}`: `{"a":"é"}`, "\"\xff\xfe\"": "\"\uFFFD\"", "{\"k\":\"a\xc3\"}": "{\"k\":\"a\uFFFD\"}", "caf\xe9": "caf\uFFFD"} {
		got := ValidText([]byte(in))
		if string(got) != want || !utf8.Valid(got) {
			t.Errorf("ValidText(%q) = %q, want %q", in, got, want)
		}
		if json.Valid([]byte(in)) && !ValidJSON(got) {
			t.Errorf("ValidText(%q) = %q: no longer JSON", in, got)
		}
	}
}

func TestMediaType(t *testing.T) {
	for ct, want := range map[string]string{
		"application/json": "application/json", "Application/JSON; charset=utf-8": "application/json",
		"text/plain": "text/plain", "text/plain;charset=utf-8": "text/plain", "application/vnd.a+json": "application/vnd.a+json",
		"": "", "text/": "", "/json": "", "not a type": "",
	} {
		if got := MediaType(ct); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", ct, got, want)
		}
	}
	if !IsJSON("application/json; charset=utf-8") || IsJSON("text/plain") {
		t.Error("IsJSON")
	}
}
