package sigv4

import (
	"errors"
	"io"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// FuzzSignedRequest signs a request carrying any header, date, payload mode and decoded
// length with Sign, then verifies it: Verify and reading the body never panic and fail
// only with an *Error of a 4xx (or 501) status; a request it accepts stops verifying
// once a signed x-amz-* header is changed. Its corpus is testdata/fuzz/FuzzSignedRequest.
func FuzzSignedRequest(f *testing.F) {
	f.Add("X-Amz-Meta-A", "v", "", UnsignedPayload, "", "", true)
	f.Add("X-Amz-Meta-A", "  two   spaces  ", "", UnsignedPayload, "", "", true)
	f.Add("Range", "bytes=0-1", "", "", "", "", false)
	f.Add("X-Amz-Meta-A", "v", "20130524T000000Z", StreamingSigned, "5", "5\r\nhello\r\n0\r\n\r\n", true)
	f.Add("X-Amz-Meta-A", "v", "", StreamingUnsignedTrl, "", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", false)
	f.Add("X-Amz-Meta-A", "é\t", "2013-05-24", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "-1", "", true)
	f.Fuzz(func(t *testing.T, name, value, date, payload, decoded, body string, tamper bool) {
		if !token(name) || strings.ContainsAny(value, "\r\n\x00") {
			return // not a header net/http would pass on from a client
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		now := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
		r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/test%24file.text", strings.NewReader(body))
		r.Header[key] = []string{value}
		if payload != "" {
			r.Header.Set("X-Amz-Content-Sha256", payload)
		}
		if decoded != "" {
			r.Header.Set("X-Amz-Decoded-Content-Length", decoded)
		}
		Sign(r, exampleAK, exampleSK, "us-east-1", now)
		if date != "" {
			r.Header.Set("X-Amz-Date", date) // after signing: a different date must not verify
		}
		v := exampleVerifier()
		res, err := v.Verify(r)
		if err != nil {
			typed(t, err)
			return
		}
		if res.AccessKey != exampleAK {
			t.Fatalf("verified as %q", res.AccessKey)
		}
		if _, err := io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)); err != nil {
			typed(t, err)
		}
		lk := strings.ToLower(key)
		if tamper && strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-date" {
			r.Header[key] = []string{value + "x"}
			if _, err := v.Verify(r); err == nil {
				t.Fatalf("%s changed from %q after signing, and it still verifies", key, value)
			}
		}
	})
}

// typed fails t unless err is an *Error a client is told about: a 4xx, or 501.
func typed(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code == "" || !(e.Status >= 400 && e.Status < 500 || e.Status == 501) {
		t.Fatalf("error %v (%T) is not a typed client error", err, err)
	}
}

// token reports whether s is an HTTP token (RFC 9110), as header names must be.
func token(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
