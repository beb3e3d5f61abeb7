package httperr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/objclient"
)

// TestWriteCallError: each failure of an object call has its status and code, wrapped or
// not; a Stream object's answer keeps its own.
func TestWriteCallError(t *testing.T) {
	for _, c := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{objclient.ErrNoHosts, 503, httperr.CodeUnavailable, false},
		{fmt.Errorf("class Room: %w", objclient.ErrOverloaded), 503, httperr.CodeUnavailable, true},
		{objclient.ErrTimeout, 504, httperr.CodeTimeout, false},
		{context.DeadlineExceeded, 504, httperr.CodeTimeout, false},
		{objclient.ErrBadRequest, 400, httperr.CodeBadRequest, false},
		{&streamapi.Error{Status: 409, Code: streamapi.CodeConflict, Message: "exists"}, 409, httperr.CodeConflict, false},
		{&streamapi.Error{Code: streamapi.CodeUnavailable, Message: "no status"}, 503, httperr.CodeUnavailable, false},
		{errors.New("anything else"), 503, httperr.CodeUnavailable, false},
	} {
		w := httptest.NewRecorder()
		httperr.WriteCallError(w, c.err)
		var b httperr.Body
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
			t.Fatalf("%v: body %q: %v", c.err, w.Body, err)
		}
		if w.Code != c.status || b.Error.Code != c.code || (w.Header().Get("Retry-After") != "") != c.retryAfter {
			t.Errorf("%v: %d %s (Retry-After %q), want %d %s", c.err, w.Code, b.Error.Code, w.Header().Get("Retry-After"), c.status, c.code)
		}
	}
}

// TestReadBody: a body within the limit is read whole, of known size or chunked; past it
// the answer is 413, a body shorter than its Content-Length 400, and nothing is returned.
func TestReadBody(t *testing.T) {
	for _, c := range []struct {
		name   string
		body   string
		length int64 // -1: unknown (chunked)
		status int
	}{
		{"known", "hello", 5, 200},
		{"chunked", "hello", -1, 200},
		{"empty", "", 0, 200},
		{"known, past the limit", "hello world", 11, 413},
		{"chunked, past the limit", "hello world", -1, 413},
		{"shorter than its length", "hel", 5, 400},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		r.ContentLength = c.length
		w := httptest.NewRecorder()
		b, ok := httperr.ReadBody(w, r, 8)
		switch {
		case c.status == 200 && (!ok || string(b) != c.body):
			t.Errorf("%s: %q, %v", c.name, b, ok)
		case c.status != 200 && (ok || b != nil || w.Code != c.status):
			t.Errorf("%s: %q, %v, status %d, want %d", c.name, b, ok, w.Code, c.status)
		}
	}
}
