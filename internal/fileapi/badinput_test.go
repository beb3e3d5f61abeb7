package fileapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httperr"
)

// wantJSONError checks the common JSON error shape with its code.
func wantJSONError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e httperr.Body
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &e) != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("got %s %q %s, want %d with code %q", resp.Status, resp.Header.Get("Content-Type"), body, status, code)
	}
}

// TestReadRanges is the /v1/files read table: each Range (and If-Range) against a 10-byte
// file, by GET and by HEAD, which must answer with the same status and headers.
func TestReadRanges(t *testing.T) {
	srv, _ := newServer(t)
	u := srv.URL + "/v1/files/files/ten"
	if resp, b := req(t, "PUT", u, strings.NewReader("0123456789"), map[string]string{"Content-Type": "text/plain"}); resp.StatusCode != 201 {
		t.Fatal(resp.Status, string(b))
	}
	resp, _ := req(t, "HEAD", u, nil, nil)
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		body   string // for 200 and single-range 206
		crange string
	}{
		{"range", map[string]string{"Range": "bytes=2-5"}, 206, "2345", "bytes 2-5/10"},
		{"open range", map[string]string{"Range": "bytes=7-"}, 206, "789", "bytes 7-9/10"},
		{"suffix", map[string]string{"Range": "bytes=-3"}, 206, "789", "bytes 7-9/10"},
		{"suffix longer than the file", map[string]string{"Range": "bytes=-30"}, 206, "0123456789", "bytes 0-9/10"},
		{"last past the end", map[string]string{"Range": "bytes=8-100"}, 206, "89", "bytes 8-9/10"},
		{"first past the end", map[string]string{"Range": "bytes=10-"}, 416, "", "bytes */10"},
		{"empty suffix", map[string]string{"Range": "bytes=-0"}, 416, "", "bytes */10"},
		{"huge first", map[string]string{"Range": "bytes=99999999999999999999999-"}, 416, "", "bytes */10"},
		{"double dash", map[string]string{"Range": "bytes=--1"}, 200, "0123456789", ""},
		{"unknown unit", map[string]string{"Range": "items=0-1"}, 200, "0123456789", ""},
		{"reversed", map[string]string{"Range": "bytes=5-3"}, 200, "0123456789", ""},
		{"not numbers", map[string]string{"Range": "bytes=a-b"}, 200, "0123456789", ""},
		{"no dash", map[string]string{"Range": "bytes=1"}, 200, "0123456789", ""},
		{"too many ranges", map[string]string{"Range": "bytes=" + strings.Repeat("0-0,", 101)}, 200, "0123456789", ""},
		{"overlaps beyond the size", map[string]string{"Range": "bytes=0-,0-"}, 200, "0123456789", ""},
		{"if-range matches", map[string]string{"Range": "bytes=0-1", "If-Range": etag}, 206, "01", "bytes 0-1/10"},
		{"if-range date matches", map[string]string{"Range": "bytes=0-1", "If-Range": lastMod}, 206, "01", "bytes 0-1/10"},
		{"if-range differs", map[string]string{"Range": "bytes=0-1", "If-Range": `"other"`}, 200, "0123456789", ""},
		{"if-range weak", map[string]string{"Range": "bytes=0-1", "If-Range": "W/" + etag}, 200, "0123456789", ""},
		{"if-range differs, unsatisfiable", map[string]string{"Range": "bytes=50-", "If-Range": `"other"`}, 200, "0123456789", ""},
		{"precondition before range", map[string]string{"Range": "bytes=50-", "If-Match": `"other"`}, 412, "", ""},
		{"not modified before range", map[string]string{"Range": "bytes=50-", "If-None-Match": etag}, 304, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get, body := req(t, "GET", u, nil, tt.hdr)
			head, hbody := req(t, "HEAD", u, nil, tt.hdr)
			if get.StatusCode != tt.status || head.StatusCode != tt.status || len(hbody) != 0 {
				t.Fatalf("GET %s, HEAD %s (%d body bytes); want %d", get.Status, head.Status, len(hbody), tt.status)
			}
			for _, k := range []string{"Content-Range", "Content-Length", "Content-Type", "ETag"} {
				if get.Header.Get(k) != head.Header.Get(k) {
					t.Errorf("%s: GET %q, HEAD %q", k, get.Header.Get(k), head.Header.Get(k))
				}
			}
			if got := get.Header.Get("Content-Range"); got != tt.crange {
				t.Errorf("Content-Range %q, want %q", got, tt.crange)
			}
			switch tt.status {
			case 200, 206:
				if string(body) != tt.body || get.Header.Get("Content-Type") != "text/plain" {
					t.Errorf("body %q (%s), want %q", body, get.Header.Get("Content-Type"), tt.body)
				}
			case 416:
				wantJSONError(t, get, body, 416, "range_not_satisfiable")
			case 412:
				wantJSONError(t, get, body, 412, "precondition_failed")
			}
		})
	}
	// Several ranges: multipart/byteranges, the same length announced by HEAD.
	hdr := map[string]string{"Range": "bytes=0-1, -2"}
	get, body := req(t, "GET", u, nil, hdr)
	head, _ := req(t, "HEAD", u, nil, hdr)
	mt, params, _ := mime.ParseMediaType(get.Header.Get("Content-Type"))
	if get.StatusCode != 206 || mt != "multipart/byteranges" || get.ContentLength != int64(len(body)) ||
		head.StatusCode != 206 || head.ContentLength != get.ContentLength || !strings.HasPrefix(head.Header.Get("Content-Type"), "multipart/byteranges; boundary=") {
		t.Fatalf("GET %s %q %d (%d bytes), HEAD %s %d", get.Status, mt, get.ContentLength, len(body), head.Status, head.ContentLength)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for _, want := range []struct{ crange, data string }{{"bytes 0-1/10", "01"}, {"bytes 8-9/10", "89"}} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(p)
		if p.Header.Get("Content-Range") != want.crange || p.Header.Get("Content-Type") != "text/plain" || string(got) != want.data {
			t.Fatalf("part %v %q, want %s %q", p.Header, got, want.crange, want.data)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("more parts: %v", err)
	}
}

// TestEmptyFileRanges: a zero-byte file has no byte to start a range at (416), and a
// suffix of it is the whole of it (200, empty).
func TestEmptyFileRanges(t *testing.T) {
	srv, _ := newServer(t)
	u := srv.URL + "/v1/files/files/empty"
	if resp, _ := req(t, "PUT", u, strings.NewReader(""), nil); resp.StatusCode != 201 {
		t.Fatal(resp.Status)
	}
	resp, b := req(t, "GET", u, nil, map[string]string{"Range": "bytes=0-"})
	wantJSONError(t, resp, b, 416, "range_not_satisfiable")
	if resp.Header.Get("Content-Range") != "bytes */0" {
		t.Fatal(resp.Header)
	}
	if resp, b = req(t, "GET", u, nil, map[string]string{"Range": "bytes=-5"}); resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != 0 {
		t.Fatal(resp.Status, len(b))
	}
}

// TestBadWrites is the /v1/files and /r2 write table: each row answers its status and
// JSON error and stores nothing, not a record and not a chunk.
func TestBadWrites(t *testing.T) {
	const limit = 1 << 20
	st := newStoreWith(t, blob.Options{MaxObjectSize: limit})
	mux := http.NewServeMux()
	mux.Handle("/v1/files/", NewHandler(st, Options{}))
	mux.Handle("/r2/", NewR2CompatHandler(st, "files", Options{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u := srv.URL + "/v1/files/files/"
	if resp, _ := req(t, "PUT", u+"kept", strings.NewReader("original"), nil); resp.StatusCode != 201 {
		t.Fatal(resp.Status)
	}
	_, before, _ := st.BlobCount(context.Background())
	big := bytes.Repeat([]byte("x"), limit+1)
	form := func(data []byte) (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", "f.bin")
		fw.Write(data)
		mw.Close()
		return &b, mw.FormDataContentType()
	}
	formBody, formType := form(big)
	emptyForm := func() (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("note", "no file")
		mw.Close()
		return &b, mw.FormDataContentType()
	}
	noFile, noFileType := emptyForm()
	tests := []struct {
		name    string
		method  string
		path    string
		body    io.Reader
		hdr     map[string]string
		chunked bool // no Content-Length: the limit is found while streaming
		status  int
		code    string
	}{
		{"over max_file_bytes", "PUT", "v1/files/files/big", bytes.NewReader(big), nil, false, 413, "payload_too_large"},
		{"over max_file_bytes, chunked", "PUT", "v1/files/files/big", bytes.NewReader(big), nil, true, 413, "payload_too_large"},
		{"over max_file_bytes, form", "POST", "v1/files/files/big", formBody, map[string]string{"Content-Type": formType}, false, 413, "payload_too_large"},
		{"over max_file_bytes, overwrite", "PUT", "v1/files/files/kept", bytes.NewReader(big), nil, true, 413, "payload_too_large"},
		{"over max_file_bytes, r2", "POST", "r2/big", bytes.NewReader(big), nil, true, 413, "payload_too_large"},
		{"form without a file", "POST", "v1/files/files/f", noFile, map[string]string{"Content-Type": noFileType}, false, 400, "bad_request"},
		{"malformed form", "POST", "v1/files/files/f", strings.NewReader("--x\r\nnot a part"), map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, false, 400, "bad_request"},
		{"metadata too large", "PUT", "v1/files/files/m", strings.NewReader("x"), map[string]string{"X-Meta-Big": strings.Repeat("v", 3000)}, false, 400, "bad_request"},
		{"if-none-match not *", "PUT", "v1/files/files/m", strings.NewReader("x"), map[string]string{"If-None-Match": `"abc"`}, false, 400, "bad_request"},
		{"if-match fails", "PUT", "v1/files/files/kept", strings.NewReader("x"), map[string]string{"If-Match": `"abc"`}, false, 412, "precondition_failed"},
		{"if-none-match * on existing", "PUT", "v1/files/files/kept", strings.NewReader("x"), map[string]string{"If-None-Match": "*"}, false, 412, "precondition_failed"},
		{"dot segment", "PUT", "v1/files/files/a/%2e%2e/b", strings.NewReader("x"), nil, false, 400, "bad_name"},
		{"key too long", "PUT", "v1/files/files/" + strings.Repeat("k", 1025), strings.NewReader("x"), nil, false, 400, "bad_name"},
		{"key not UTF-8", "PUT", "v1/files/files/caf%E9", strings.NewReader("x"), nil, false, 400, "invalid_utf8"},
		{"key not UTF-8, get", "GET", "v1/files/files/a%FF%FEb", nil, nil, false, 400, "invalid_utf8"},
		{"metadata not UTF-8", "PUT", "v1/files/files/m", strings.NewReader("x"), map[string]string{"X-Meta-Note": "caf\xe9"}, false, 400, "invalid_utf8"},
		{"content type not UTF-8", "PUT", "v1/files/files/m", strings.NewReader("x"), map[string]string{"Content-Type": "text/plain; name=\xff"}, false, 400, "invalid_utf8"},
		{"kept header not UTF-8", "PUT", "v1/files/files/m", strings.NewReader("x"), map[string]string{"Content-Disposition": "attachment; filename=\"\xe9.txt\""}, false, 400, "invalid_utf8"},
		{"no such bucket", "PUT", "v1/files/nope/k", strings.NewReader("x"), nil, false, 404, "not_found"},
		{"write a bucket", "PUT", "v1/files/files", strings.NewReader("x"), nil, false, 405, "method_not_allowed"},
		{"unknown method", "PATCH", "v1/files/files/k", strings.NewReader("x"), nil, false, 405, "method_not_allowed"},
		{"list limit 0", "GET", "v1/files/files?limit=0", nil, nil, false, 400, "bad_request"},
		{"list limit huge", "GET", "v1/files/files?limit=99999999999999999999", nil, nil, false, 400, "bad_request"},
		{"list bad cursor", "GET", "v1/files/files?cursor=%21%21", nil, nil, false, 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			resp, b := req(t, tt.method, srv.URL+"/"+tt.path, body, tt.hdr)
			wantJSONError(t, resp, b, tt.status, tt.code)
			if res, _ := st.List(context.Background(), "files", blob.ListOptions{}); len(res.Objects) != 1 || res.Objects[0].Key != "kept" {
				t.Fatalf("stored %v", res.Objects)
			}
			if _, got := req(t, "GET", u+"kept", nil, nil); string(got) != "original" {
				t.Fatalf("kept is now %q", got)
			}
			if _, after, _ := st.BlobCount(context.Background()); after != before {
				t.Fatalf("chunk bytes %d, was %d: the refused upload left data", after, before)
			}
		})
	}
	// A body shorter than its Content-Length (sent to the handler: a client would not).
	w := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "/v1/files/files/short", strings.NewReader("12345"))
	r.ContentLength = 10
	NewHandler(st, Options{}).ServeHTTP(w, r)
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"bad_request"`) {
		t.Fatal(w.Code, w.Body.String())
	}
	// At the limit exactly is fine.
	if resp, b := req(t, "PUT", u+"edge", bytes.NewReader(big[:limit]), nil); resp.StatusCode != 201 {
		t.Fatal(resp.Status, string(b))
	}
}

// FuzzRangeRequest sends GET and HEAD with any Range and If-Range to /v1/files and checks
// the answer: never a 5xx; 200 with the whole file, 206 with exactly the bytes its
// Content-Range names (or a multipart/byteranges body of the announced length), or 416
// with Content-Range: bytes */size; HEAD with GET's status and length. Its corpus is
// testdata/fuzz/FuzzRangeRequest.
func FuzzRangeRequest(f *testing.F) {
	st := newStore(f)
	h := NewHandler(st, Options{})
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := st.PutObject(context.Background(), "files", "f", bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "application/x-f"}); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"bytes=0-0", "bytes=--1", "bytes=-0", "items=0-1", "bytes=0-1,5-9", "bytes=999-", "bytes=1000-"} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, rng, ifRange string) {
		serve := func(method string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, "/v1/files/files/f", nil)
			r.Header["Range"] = []string{rng}
			if ifRange != "" {
				r.Header["If-Range"] = []string{ifRange}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		get, head := serve("GET"), serve("HEAD")
		// (net/http drops what a HEAD handler writes; the recorder keeps an error's body.)
		if get.Code != head.Code || get.Header().Get("Content-Length") != head.Header().Get("Content-Length") || get.Code/100 == 2 && head.Body.Len() != 0 {
			t.Fatalf("Range %q: GET %d %s, HEAD %d %s", rng, get.Code, get.Header().Get("Content-Length"), head.Code, head.Header().Get("Content-Length"))
		}
		body := get.Body.Bytes()
		switch get.Code {
		case 200:
			if !bytes.Equal(body, data) {
				t.Fatalf("Range %q: 200 with %d bytes", rng, len(body))
			}
		case 206:
			if get.Header().Get("Content-Length") != fmt.Sprint(len(body)) {
				t.Fatalf("Range %q: Content-Length %s, body %d", rng, get.Header().Get("Content-Length"), len(body))
			}
			if strings.HasPrefix(get.Header().Get("Content-Type"), "multipart/byteranges") {
				return
			}
			var first, last, size int
			if _, err := fmt.Sscanf(get.Header().Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &size); err != nil ||
				size != len(data) || first > last || last >= size || !bytes.Equal(body, data[first:last+1]) {
				t.Fatalf("Range %q: 206 %q with %d bytes", rng, get.Header().Get("Content-Range"), len(body))
			}
		case 416:
			if get.Header().Get("Content-Range") != "bytes */1000" || !strings.Contains(get.Body.String(), `"range_not_satisfiable"`) {
				t.Fatalf("Range %q: 416 %q %s", rng, get.Header().Get("Content-Range"), body)
			}
		default:
			t.Fatalf("Range %q, If-Range %q: %d %s", rng, ifRange, get.Code, body)
		}
	})
}
