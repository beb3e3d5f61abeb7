package httperr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
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
