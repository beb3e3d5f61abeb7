package s3api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/sigv4"
	"github.com/nats-io/nats.go/jetstream"
)

func newHandler(t testing.TB) (http.Handler, *blob.Store) { return newHandlerWith(t, blob.Options{}) }

func newHandlerWith(t testing.TB, opts blob.Options) (http.Handler, *blob.Store) {
	s := natstest.Server(t)
	js, _ := jetstream.New(natstest.Conn(t, s))
	opts.GCInterval = -1
	st, err := blob.Open(context.Background(), js, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.EnsureBucket(context.Background(), "files"); err != nil {
		t.Fatal(err)
	}
	return NewHandler(st, Options{Credentials: []Credential{{"ak", "sk"}}, BaseDomains: []string{"localhost"}}), st
}

func do(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func signed(method, url, body string, hdr map[string]string) *http.Request {
	r := httptest.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(body))
	if r.Header.Get("X-Amz-Content-Sha256") == "" {
		r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	}
	sigv4.Sign(r, "ak", "sk", "us-east-1", time.Now())
	return r
}

func wantErr(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status || !strings.Contains(w.Body.String(), "<Code>"+code+"</Code>") {
		t.Fatalf("got %d %s, want %d %s", w.Code, w.Body.String(), status, code)
	}
}

func TestErrorsStoreNothing(t *testing.T) {
	h, st := newHandler(t)
	// Anonymous.
	wantErr(t, do(h, httptest.NewRequest("PUT", "http://localhost/files/k", strings.NewReader("x"))), 403, "AccessDenied")
	// Bad signature.
	r := signed("PUT", "http://localhost/files/k", "x", nil)
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Credential=ak/", "Credential=zz/", 1))
	wantErr(t, do(h, r), 403, "InvalidAccessKeyId")
	r = signed("PUT", "http://localhost/files/k", "x", nil)
	r.Header.Set("X-Amz-Meta-Sneaky", "added after signing")
	wantErr(t, do(h, r), 403, "AccessDenied")
	r = signed("PUT", "http://localhost/files/k", "x", map[string]string{"X-Amz-Meta-A": "1"})
	r.Header.Set("X-Amz-Meta-A", "2")
	wantErr(t, do(h, r), 403, "SignatureDoesNotMatch")
	// Body not matching its signed digest.
	r = signed("PUT", "http://localhost/files/k", "x", nil)
	r.Body = io.NopCloser(strings.NewReader("y"))
	wantErr(t, do(h, r), 400, "XAmzContentSHA256Mismatch")
	// ../ in keys.
	wantErr(t, do(h, signed("PUT", "http://localhost/files/a/../b", "x", nil)), 400, "InvalidArgument")
	wantErr(t, do(h, signed("PUT", "http://localhost/files/"+strings.Repeat("k", 1025), "x", nil)), 400, "KeyTooLongError")
	// Oversized metadata.
	wantErr(t, do(h, signed("PUT", "http://localhost/files/k", "x", map[string]string{"X-Amz-Meta-Big": strings.Repeat("v", 3000)})), 400, "MetadataTooLarge")
	// Truncated body (unsigned payload, Content-Length larger than the body).
	r = signed("PUT", "http://localhost/files/k", "", map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
	r.Body = io.NopCloser(strings.NewReader("only ten b"))
	r.ContentLength = 100
	wantErr(t, do(h, r), 400, "IncompleteBody")
	// Wrong Content-MD5 and checksum.
	wantErr(t, do(h, signed("PUT", "http://localhost/files/k", "x", map[string]string{"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})), 400, "BadDigest")
	wantErr(t, do(h, signed("PUT", "http://localhost/files/k", "x", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="})), 400, "BadDigest")
	// Unsupported features.
	wantErr(t, do(h, signed("PUT", "http://localhost/files/k?tagging", "x", nil)), 501, "NotImplemented")
	wantErr(t, do(h, signed("PUT", "http://localhost/files/k", "x", map[string]string{"X-Amz-Server-Side-Encryption": "AES256"})), 501, "NotImplemented")
	if r, _ := st.List(context.Background(), "files", blob.ListOptions{}); len(r.Objects) != 0 {
		t.Fatalf("stored %v", r.Objects)
	}
	if n, _, _ := st.BlobCount(context.Background()); n != 0 {
		t.Fatalf("%d blobs left", n)
	}
	// A good request works, in both addressing styles.
	if w := do(h, signed("PUT", "http://files.localhost/k", "hello", nil)); w.Code != 200 {
		t.Fatal(w.Code, w.Body.String())
	}
	w := do(h, signed("GET", "http://localhost/files/k", "", map[string]string{"Range": "bytes=1-3"}))
	if w.Code != 206 || w.Body.String() != "ell" || w.Header().Get("Content-Range") != "bytes 1-3/5" {
		t.Fatal(w.Code, w.Body.String())
	}
}
