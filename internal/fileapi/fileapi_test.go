package fileapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func newStore(t testing.TB) *blob.Store { return newStoreWith(t, blob.Options{}) }

func newStoreWith(t testing.TB, opts blob.Options) *blob.Store {
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
	return st
}

func newServer(t testing.TB) (*httptest.Server, *blob.Store) {
	st := newStore(t)
	mux := http.NewServeMux()
	mux.Handle("/v1/files/", NewHandler(st, Options{}))
	mux.Handle("/r2/", NewR2CompatHandler(st, "files", Options{Authorize: func(r *http.Request) bool { return r.URL.Query().Get("apiKey") == "k" }}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, st
}

func req(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	r, _ := http.NewRequest(method, url, body)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func TestFilesAPI(t *testing.T) {
	srv, _ := newServer(t)
	u := srv.URL + "/v1/files/files/"
	data := make([]byte, 3<<20+7)
	rand.New(rand.NewSource(1)).Read(data)
	resp, b := req(t, "PUT", u+"dir/a.bin", bytes.NewReader(data), map[string]string{"Content-Type": "application/x-a", "X-Meta-Owner": "alice"})
	if resp.StatusCode != 201 {
		t.Fatal(resp.Status, string(b))
	}
	var info objectJSON
	json.Unmarshal(b, &info)
	if info.Size != int64(len(data)) || info.CustomMetadata["owner"] != "alice" {
		t.Fatalf("%+v", info)
	}
	resp, b = req(t, "GET", u+"dir/a.bin", nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(b, data) || resp.Header.Get("Content-Type") != "application/x-a" || resp.Header.Get("X-Meta-Owner") != "alice" {
		t.Fatal(resp.Status, resp.Header)
	}
	etag := resp.Header.Get("ETag")
	resp, b = req(t, "GET", u+"dir/a.bin", nil, map[string]string{"Range": "bytes=1000-1999"})
	if resp.StatusCode != 206 || !bytes.Equal(b, data[1000:2000]) {
		t.Fatal(resp.Status)
	}
	resp, b = req(t, "GET", u+"dir/a.bin", nil, map[string]string{"Range": "bytes=0-0,-1"})
	if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Fatal(resp.Status, resp.Header)
	}
	resp, _ = req(t, "GET", u+"dir/a.bin", nil, map[string]string{"Range": "bytes=99999999-"})
	if resp.StatusCode != 416 {
		t.Fatal(resp.Status)
	}
	resp, _ = req(t, "GET", u+"dir/a.bin", nil, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 304 {
		t.Fatal(resp.Status)
	}
	resp, _ = req(t, "GET", u+"dir/a.bin", nil, map[string]string{"If-Match": `"other"`})
	if resp.StatusCode != 412 {
		t.Fatal(resp.Status)
	}
	resp, b = req(t, "HEAD", u+"dir/a.bin", nil, nil)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) || len(b) != 0 {
		t.Fatal(resp.Status)
	}
	resp, b = req(t, "PUT", u+"dir/a.bin", strings.NewReader("x"), map[string]string{"If-None-Match": "*"})
	if resp.StatusCode != 412 || !strings.Contains(string(b), `"precondition_failed"`) {
		t.Fatal(resp.Status, string(b))
	}
	// Browser form upload.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("note", "ignored")
	fw, _ := mw.CreateFormFile("file", "hello.txt")
	fw.Write([]byte("hello from a form"))
	mw.Close()
	resp, b = req(t, "POST", u+"form.txt", &form, map[string]string{"Content-Type": mw.FormDataContentType()})
	if resp.StatusCode != 201 {
		t.Fatal(resp.Status, string(b))
	}
	if _, b = req(t, "GET", u+"form.txt", nil, nil); string(b) != "hello from a form" {
		t.Fatal(string(b))
	}
	// Listing with a cursor.
	for i := range 5 {
		req(t, "PUT", fmt.Sprintf("%slist/%d", u, i), strings.NewReader("x"), nil)
	}
	var keys []string
	cursor := ""
	for pages := 0; ; pages++ {
		_, b = req(t, "GET", srv.URL+"/v1/files/files?prefix=list/&limit=2&cursor="+cursor, nil, nil)
		var l listJSON
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err, string(b))
		}
		for _, o := range l.Objects {
			keys = append(keys, o.Key)
		}
		if !l.Truncated {
			break
		}
		cursor = l.Cursor
	}
	if strings.Join(keys, ",") != "list/0,list/1,list/2,list/3,list/4" {
		t.Fatal(keys)
	}
	_, b = req(t, "GET", srv.URL+"/v1/files/files/?delimiter=/", nil, nil)
	var l listJSON
	json.Unmarshal(b, &l)
	if fmt.Sprint(l.DelimitedPrefixes) != "[dir/ list/]" || len(l.Objects) != 1 {
		t.Fatal(string(b))
	}
	// Errors.
	if resp, b = req(t, "GET", u+"missing", nil, nil); resp.StatusCode != 404 || !strings.Contains(string(b), `"not_found"`) {
		t.Fatal(resp.Status, string(b))
	}
	// ../ in keys (sent to the handler directly: a ServeMux would clean the path first).
	w := httptest.NewRecorder()
	NewHandler(nil, Options{}).ServeHTTP(w, httptest.NewRequest("PUT", "/v1/files/files/a/../b", strings.NewReader("x")))
	if w.Code != 400 {
		t.Fatal(w.Code)
	}
	if resp, _ = req(t, "GET", srv.URL+"/v1/files/nope/k", nil, nil); resp.StatusCode != 404 {
		t.Fatal(resp.Status)
	}
	if resp, _ = req(t, "DELETE", u+"dir/a.bin", nil, nil); resp.StatusCode != 204 {
		t.Fatal(resp.Status)
	}
	if resp, _ = req(t, "GET", u+"dir/a.bin", nil, nil); resp.StatusCode != 404 {
		t.Fatal(resp.Status)
	}
}

// TestCurlUpload streams a file with curl -T (20 MiB here; HOLDFAST_BIG_FILES=1 makes it
// 1 GiB).
func TestCurlUpload(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	srv, _ := newServer(t)
	size := int64(20 << 20)
	if os.Getenv("HOLDFAST_BIG_FILES") == "1" {
		size = 1 << 30
	}
	path := filepath.Join(t.TempDir(), "f")
	f, _ := os.Create(path)
	h := sha256.New()
	io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.New(rand.NewSource(2)), size))
	f.Close()
	out, err := exec.Command("curl", "-sS", "-f", "-T", path, srv.URL+"/v1/files/files/big.bin").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	resp, err := http.Get(srv.URL + "/v1/files/files/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	h2 := sha256.New()
	n, _ := io.Copy(h2, resp.Body)
	resp.Body.Close()
	if n != size || !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		t.Fatalf("downloaded %d bytes, checksum differs", n)
	}
}

func TestR2Compat(t *testing.T) {
	srv, _ := newServer(t)
	u := srv.URL + "/r2/"
	if resp, b := req(t, "POST", u+"docs/x.txt?apiKey=nope", strings.NewReader("x"), nil); resp.StatusCode != 401 || string(b) != "Unauthorized\n" {
		t.Fatal(resp.Status, string(b))
	}
	resp, b := req(t, "POST", u+"docs/x.txt?apiKey=k", strings.NewReader("0123456789"), map[string]string{"Content-Type": "text/plain"})
	if resp.StatusCode != 200 || string(b) != "Put docs/x.txt successfully!" || resp.Header.Get("ETag") == "" {
		t.Fatal(resp.Status, string(b))
	}
	resp, b = req(t, "HEAD", u+"docs/x.txt?apiKey=k", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatal(resp.Status, resp.Header)
	}
	resp, b = req(t, "GET", u+"docs/x.txt?apiKey=k", nil, map[string]string{"Range": "bytes=2-5"})
	if resp.StatusCode != 206 || string(b) != "2345" || resp.Header.Get("Content-Range") != "bytes 2-5/10" {
		t.Fatal(resp.Status, string(b), resp.Header)
	}
	resp, _ = req(t, "GET", u+"docs/x.txt?apiKey=k", nil, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != 304 {
		t.Fatal(resp.Status)
	}
	_, b = req(t, "GET", u+"?apiKey=k&prefix=docs/", nil, nil)
	var l listJSON
	if err := json.Unmarshal(b, &l); err != nil || len(l.Objects) != 1 || l.Objects[0].Key != "docs/x.txt" || l.Objects[0].HTTPMetadata["contentType"] != "text/plain" {
		t.Fatal(string(b), err)
	}
	if resp, _ = req(t, "HEAD", u+"?apiKey=k", nil, nil); resp.StatusCode != 400 {
		t.Fatal(resp.Status)
	}
	if resp, _ = req(t, "DELETE", u+"docs/x.txt?apiKey=k", nil, nil); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if resp, b = req(t, "GET", u+"docs/x.txt?apiKey=k", nil, nil); resp.StatusCode != 404 || !strings.Contains(string(b), "not found") {
		t.Fatal(resp.Status, string(b))
	}
}

func TestBucketBinding(t *testing.T) {
	st := newStore(t)
	b := NewBucket(st, "files")
	ctx := context.Background()
	info, err := b.Put(ctx, "k", strings.NewReader("hello world"), &functions.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"a": "1"}, Size: -1})
	if err != nil || info.Size != 11 || !strings.HasPrefix(info.ETag, `"`) {
		t.Fatal(info, err)
	}
	if _, err := b.Put(ctx, "k", strings.NewReader("x"), &functions.PutOptions{IfMatch: `"nope"`, Size: -1}); !errors.Is(err, functions.ErrPreconditionFailed) {
		t.Fatal(err)
	}
	h, err := b.Head(ctx, "k")
	if err != nil || h.ContentType != "text/plain" || h.Metadata["a"] != "1" {
		t.Fatal(h, err)
	}
	for _, tc := range []struct {
		opts *functions.GetOptions
		want string
	}{
		{nil, "hello world"},
		{&functions.GetOptions{Ranged: true, Offset: 6, Length: -1}, "world"},
		{&functions.GetOptions{Ranged: true, Offset: 0, Length: 5}, "hello"},
		{&functions.GetOptions{Suffix: 3}, "rld"},
	} {
		o, err := b.Get(ctx, "k", tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(o.Body)
		o.Body.Close()
		if string(got) != tc.want {
			t.Fatalf("%+v: %q", tc.opts, got)
		}
	}
	if _, err := b.Get(ctx, "k", &functions.GetOptions{IfNoneMatch: info.ETag}); !errors.Is(err, functions.ErrPreconditionFailed) {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "missing", nil); !errors.Is(err, functions.ErrNoSuchObject) {
		t.Fatal(err)
	}
	for i := range 3 {
		b.Put(ctx, fmt.Sprintf("p/%d", i), strings.NewReader("x"), nil)
	}
	l, err := b.List(ctx, &functions.ListOptions{Prefix: "p/", Limit: 2})
	if err != nil || len(l.Objects) != 2 || !l.Truncated {
		t.Fatal(l, err)
	}
	l, err = b.List(ctx, &functions.ListOptions{Prefix: "p/", Cursor: l.Cursor})
	if err != nil || len(l.Objects) != 1 || l.Objects[0].Key != "p/2" {
		t.Fatal(l, err)
	}
	if err := b.Delete(ctx, "p/0", "p/1", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, "k"); !errors.Is(err, functions.ErrNoSuchObject) {
		t.Fatal(err)
	}
}
