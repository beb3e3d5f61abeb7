package s3api

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/blob"
)

// TestGetRanges is the S3 read table against a 10-byte object: GET and HEAD answer the
// same status and headers; an unsatisfiable range is InvalidRange with
// Content-Range: bytes */10; malformed ranges, unknown units and several ranges are
// ignored (200, the whole object) as AWS S3 does.
func TestGetRanges(t *testing.T) {
	h, _ := newHandler(t)
	if w := do(h, signed("PUT", "http://localhost/files/ten", "0123456789", nil)); w.Code != 200 {
		t.Fatal(w.Code, w.Body.String())
	}
	etag := do(h, signed("HEAD", "http://localhost/files/ten", "", nil)).Header().Get("ETag")
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		body   string
		crange string
	}{
		{"range", map[string]string{"Range": "bytes=1-3"}, 206, "123", "bytes 1-3/10"},
		{"suffix", map[string]string{"Range": "bytes=-4"}, 206, "6789", "bytes 6-9/10"},
		{"open", map[string]string{"Range": "bytes=8-"}, 206, "89", "bytes 8-9/10"},
		{"last past the end", map[string]string{"Range": "bytes=8-99"}, 206, "89", "bytes 8-9/10"},
		{"double dash", map[string]string{"Range": "bytes=--1"}, 200, "0123456789", ""},
		{"unknown unit", map[string]string{"Range": "items=0-1"}, 200, "0123456789", ""},
		{"reversed", map[string]string{"Range": "bytes=5-3"}, 200, "0123456789", ""},
		{"garbage", map[string]string{"Range": "bytes=x"}, 200, "0123456789", ""},
		{"several ranges", map[string]string{"Range": "bytes=0-1,3-4"}, 200, "0123456789", ""},
		{"empty suffix", map[string]string{"Range": "bytes=-0"}, 416, "", "bytes */10"},
		{"first past the end", map[string]string{"Range": "bytes=10-"}, 416, "", "bytes */10"},
		{"huge first", map[string]string{"Range": "bytes=99999999999999999999-"}, 416, "", "bytes */10"},
		{"if-range matches", map[string]string{"Range": "bytes=0-0", "If-Range": etag}, 206, "0", "bytes 0-0/10"},
		{"if-range differs", map[string]string{"Range": "bytes=0-0", "If-Range": `"x"`}, 200, "0123456789", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := do(h, signed("GET", "http://localhost/files/ten", "", tt.hdr))
			head := do(h, signed("HEAD", "http://localhost/files/ten", "", tt.hdr))
			if get.Code != tt.status || head.Code != tt.status {
				t.Fatalf("GET %d %s, HEAD %d; want %d", get.Code, get.Body.String(), head.Code, tt.status)
			}
			for _, k := range []string{"Content-Range", "Content-Length", "ETag"} {
				if tt.status != 416 && get.Header().Get(k) != head.Header().Get(k) {
					t.Errorf("%s: GET %q, HEAD %q", k, get.Header().Get(k), head.Header().Get(k))
				}
			}
			if got := get.Header().Get("Content-Range"); got != tt.crange || head.Header().Get("Content-Range") != tt.crange {
				t.Errorf("Content-Range GET %q HEAD %q, want %q", got, head.Header().Get("Content-Range"), tt.crange)
			}
			if tt.status == 416 {
				wantErr(t, get, 416, "InvalidRange")
				return
			}
			if get.Body.String() != tt.body || head.Body.Len() != 0 {
				t.Errorf("body %q, want %q", get.Body.String(), tt.body)
			}
		})
	}
}

// TestBadRequestsStoreNothing is the S3 write table: max_file_bytes on PUT, UploadPart
// and CompleteMultipartUpload's total (EntityTooLarge), malformed XML bodies, bad copy
// ranges; each row answers S3's XML error and leaves no object behind.
func TestBadRequestsStoreNothing(t *testing.T) {
	const limit = 6 << 20 // room for one 5 MiB part, not for two parts of 7 MiB together
	h, st := newHandlerWith(t, blob.Options{MaxObjectSize: limit})
	if w := do(h, signed("PUT", "http://localhost/files/ten", "0123456789", nil)); w.Code != 200 {
		t.Fatal(w.Code, w.Body.String())
	}
	w := do(h, signed("POST", "http://localhost/files/big?uploads", "", nil))
	var up struct {
		UploadID string `xml:"UploadId"`
	}
	if xml.Unmarshal(w.Body.Bytes(), &up) != nil || up.UploadID == "" {
		t.Fatal(w.Code, w.Body.String())
	}
	part := func(n int, size int) string {
		w := do(h, signed("PUT", "http://localhost/files/big?partNumber="+string(rune('0'+n))+"&uploadId="+up.UploadID, strings.Repeat("p", size), nil))
		if w.Code != 200 {
			t.Fatal(w.Code, w.Body.String())
		}
		return w.Header().Get("ETag")
	}
	e1, e2 := part(1, 5<<20), part(2, 2<<20)
	complete := func(etags ...string) string {
		var b strings.Builder
		b.WriteString("<CompleteMultipartUpload>")
		for i, e := range etags {
			b.WriteString("<Part><PartNumber>" + string(rune('1'+i)) + "</PartNumber><ETag>" + e + "</ETag></Part>")
		}
		b.WriteString("</CompleteMultipartUpload>")
		return b.String()
	}
	_, blobsBefore, _ := st.BlobCount(context.Background())
	big := strings.Repeat("x", limit+1)
	uploadURL := "http://localhost/files/big?uploadId=" + up.UploadID
	tests := []struct {
		name, method, url, body string
		hdr                     map[string]string
		status                  int
		code                    string
	}{
		{"put over max_file_bytes", "PUT", "http://localhost/files/big", big, nil, 400, "EntityTooLarge"},
		{"part over max_file_bytes", "PUT", "http://localhost/files/big?partNumber=3&uploadId=" + up.UploadID, big, nil, 400, "EntityTooLarge"},
		{"complete over max_file_bytes", "POST", uploadURL, complete(e1, e2), nil, 400, "EntityTooLarge"},
		{"complete not XML", "POST", uploadURL, "<CompleteMultipartUpload><Part>", nil, 400, "MalformedXML"},
		{"complete without parts", "POST", uploadURL, "<CompleteMultipartUpload></CompleteMultipartUpload>", nil, 400, "MalformedXML"},
		{"complete nested too deep", "POST", uploadURL, strings.Repeat("<a>", 20000) + strings.Repeat("</a>", 20000), nil, 400, "MalformedXML"},
		{"complete too long", "POST", uploadURL, "<CompleteMultipartUpload>" + strings.Repeat(" ", 4<<20) + "</CompleteMultipartUpload>", nil, 400, "MalformedXML"},
		{"complete with a wrong etag", "POST", uploadURL, complete(`"0000"`), nil, 400, "InvalidPart"},
		{"complete out of order", "POST", uploadURL, "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>" + e2 + "</ETag></Part><Part><PartNumber>1</PartNumber><ETag>" + e1 + "</ETag></Part></CompleteMultipartUpload>", nil, 400, "InvalidPartOrder"},
		{"delete not XML", "POST", "http://localhost/files?delete", "<Delete><Object><Key>ten", nil, 400, "MalformedXML"},
		{"delete too many keys", "POST", "http://localhost/files?delete", "<Delete>" + strings.Repeat("<Object><Key>ten</Key></Object>", 1001) + "</Delete>", nil, 400, "MalformedXML"},
		{"copy range suffix", "PUT", "http://localhost/files/big?partNumber=4&uploadId=" + up.UploadID, "", map[string]string{"X-Amz-Copy-Source": "/files/ten", "X-Amz-Copy-Source-Range": "bytes=-5"}, 400, "InvalidArgument"},
		{"copy range open", "PUT", "http://localhost/files/big?partNumber=4&uploadId=" + up.UploadID, "", map[string]string{"X-Amz-Copy-Source": "/files/ten", "X-Amz-Copy-Source-Range": "bytes=0-"}, 400, "InvalidArgument"},
		{"copy range past the end", "PUT", "http://localhost/files/big?partNumber=4&uploadId=" + up.UploadID, "", map[string]string{"X-Amz-Copy-Source": "/files/ten", "X-Amz-Copy-Source-Range": "bytes=5-10"}, 400, "InvalidArgument"},
		{"copy range reversed", "PUT", "http://localhost/files/big?partNumber=4&uploadId=" + up.UploadID, "", map[string]string{"X-Amz-Copy-Source": "/files/ten", "X-Amz-Copy-Source-Range": "bytes=5-3"}, 400, "InvalidArgument"},
		{"copy range double dash", "PUT", "http://localhost/files/big?partNumber=4&uploadId=" + up.UploadID, "", map[string]string{"X-Amz-Copy-Source": "/files/ten", "X-Amz-Copy-Source-Range": "bytes=--1"}, 400, "InvalidArgument"},
		{"part number not a number", "PUT", "http://localhost/files/big?partNumber=x&uploadId=" + up.UploadID, "x", nil, 400, "InvalidArgument"},
		{"part number too large", "PUT", "http://localhost/files/big?partNumber=10001&uploadId=" + up.UploadID, "x", nil, 400, "InvalidArgument"},
		{"get part number 0", "GET", "http://localhost/files/ten?partNumber=0", "", nil, 400, "InvalidArgument"},
		{"get part number 2 of a plain object", "GET", "http://localhost/files/ten?partNumber=2", "", nil, 416, "InvalidPartNumber"},
		{"key not UTF-8", "PUT", "http://localhost/files/caf%E9", "x", nil, 400, "InvalidURI"},
		{"get a key not UTF-8", "GET", "http://localhost/files/a%FF", "", nil, 400, "InvalidURI"},
		{"metadata not UTF-8", "PUT", "http://localhost/files/m", "x", map[string]string{"X-Amz-Meta-Note": "caf\xe9"}, 400, "InvalidArgument"},
		{"content disposition not UTF-8", "PUT", "http://localhost/files/m", "x", map[string]string{"Content-Disposition": "attachment; filename=\xff"}, 400, "InvalidArgument"},
		{"multipart metadata not UTF-8", "POST", "http://localhost/files/m?uploads", "", map[string]string{"X-Amz-Meta-Note": "\xff"}, 400, "InvalidArgument"},
		{"copy with metadata not UTF-8", "PUT", "http://localhost/files/m", "", map[string]string{"X-Amz-Copy-Source": "/files/ten", "X-Amz-Metadata-Directive": "REPLACE", "X-Amz-Meta-Note": "\xfe"}, 400, "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, do(h, signed(tt.method, tt.url, tt.body, tt.hdr)), tt.status, tt.code)
			res, _ := st.List(context.Background(), "files", blob.ListOptions{})
			if len(res.Objects) != 1 || res.Objects[0].Key != "ten" {
				t.Fatalf("objects %v", res.Objects)
			}
			if _, blobs, _ := st.BlobCount(context.Background()); blobs != blobsBefore {
				t.Fatalf("chunk bytes %d, was %d", blobs, blobsBefore)
			}
			if w := do(h, signed("GET", "http://localhost/files/ten", "", nil)); w.Body.String() != "0123456789" {
				t.Fatalf("ten is %q", w.Body.String())
			}
		})
	}
	// The refused completion left the upload, which a client may still abort.
	if w := do(h, signed("DELETE", uploadURL, "", nil)); w.Code != 204 {
		t.Fatal(w.Code, w.Body.String())
	}
	// Parts within the limit complete.
	w = do(h, signed("POST", "http://localhost/files/small?uploads", "", nil))
	up.UploadID = ""
	if xml.Unmarshal(w.Body.Bytes(), &up); up.UploadID == "" {
		t.Fatal(w.Body.String())
	}
	w = do(h, signed("PUT", "http://localhost/files/small?partNumber=1&uploadId="+up.UploadID, "tiny", nil))
	if w = do(h, signed("POST", "http://localhost/files/small?uploadId="+up.UploadID, complete(w.Header().Get("ETag")), nil)); w.Code != 200 {
		t.Fatal(w.Code, w.Body.String())
	}
}

// FuzzXMLBodies feeds the two XML bodies S3 clients send (CompleteMultipartUpload and
// DeleteObjects) to the parsers the handlers use: no panic, MalformedXML or a result
// within S3's counts. Its corpus is testdata/fuzz/FuzzXMLBodies.
func FuzzXMLBodies(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"e"</ETag></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key><VersionId>null</VersionId></Object></Delete>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if parts, err := parseComplete(raw); err != nil {
			if err != errMalformedXML {
				t.Fatalf("parseComplete: %v", err)
			}
		} else if len(parts) == 0 || len(parts) > blob.MaxParts {
			t.Fatalf("parseComplete accepted %d parts", len(parts))
		}
		if req, err := parseDelete(raw); err != nil {
			if err != errMalformedXML {
				t.Fatalf("parseDelete: %v", err)
			}
		} else if len(req.Objects) > maxDeleteObjects {
			t.Fatalf("parseDelete accepted %d objects", len(req.Objects))
		}
	})
}

// FuzzRangeRequest sends GetObject and HeadObject with any Range and If-Range: never a
// 5xx; 200 with the whole object, 206 with exactly the bytes its Content-Range names, or
// 416 InvalidRange with Content-Range: bytes */size; HEAD with GET's status and headers.
// Its corpus is testdata/fuzz/FuzzRangeRequest.
func FuzzRangeRequest(f *testing.F) {
	h, _ := newHandler(f)
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	if w := do(h, signed("PUT", "http://localhost/files/f", string(data), nil)); w.Code != 200 {
		f.Fatal(w.Code, w.Body.String())
	}
	for _, s := range []string{"bytes=0-0", "bytes=--1", "bytes=-0", "items=0-1", "bytes=0-1,5-9", "bytes=999-", "bytes=1000-"} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, rng, ifRange string) {
		serve := func(method string) (int, http.Header, []byte) {
			r := signed(method, "http://localhost/files/f", "", nil)
			r.Header["Range"] = []string{rng}
			if ifRange != "" {
				r.Header["If-Range"] = []string{ifRange}
			}
			w := do(h, r)
			return w.Code, w.Header(), w.Body.Bytes()
		}
		code, hd, body := serve("GET")
		hcode, hhd, hbody := serve("HEAD")
		if code != hcode || hd.Get("Content-Range") != hhd.Get("Content-Range") || code/100 == 2 && (hd.Get("Content-Length") != hhd.Get("Content-Length") || len(hbody) != 0) {
			t.Fatalf("Range %q: GET %d %v, HEAD %d %v", rng, code, hd, hcode, hhd)
		}
		switch code {
		case 200:
			if !bytes.Equal(body, data) || hd.Get("Content-Range") != "" {
				t.Fatalf("Range %q: 200 with %d bytes", rng, len(body))
			}
		case 206:
			var first, last, size int
			if _, err := fmt.Sscanf(hd.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &size); err != nil ||
				size != len(data) || first > last || last >= size || !bytes.Equal(body, data[first:last+1]) || hd.Get("Content-Length") != fmt.Sprint(len(body)) {
				t.Fatalf("Range %q: 206 %q with %d bytes", rng, hd.Get("Content-Range"), len(body))
			}
		case 416:
			if hd.Get("Content-Range") != "bytes */1000" || !strings.Contains(string(body), "<Code>InvalidRange</Code>") {
				t.Fatalf("Range %q: 416 %q %s", rng, hd.Get("Content-Range"), body)
			}
		default:
			t.Fatalf("Range %q, If-Range %q: %d %s", rng, ifRange, code, body)
		}
	})
}
