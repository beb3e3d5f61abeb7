package fileapi

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/httprange"
)

// serve answers GET and HEAD of an object (HEAD with the same status and headers as GET,
// without the body): the preconditions If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since (304, 412), then the Range under If-Range through internal/httprange:
// one range → 206, several → 206 multipart/byteranges, none satisfiable → 416 with
// Content-Range: bytes */size; an unknown unit or a malformed Range is ignored (200).
func serve(w http.ResponseWriter, r *http.Request, store *blob.Store, bucket, key string) {
	obj, err := store.OpenObject(r.Context(), bucket, key)
	if err != nil {
		writeErr(w, err)
		return
	}
	info := &obj.Info
	hd := w.Header()
	switch httprange.Check(r.Header, "", info.ETag, info.Modified) {
	case httprange.PreconditionFailed:
		httperr.Write(w, http.StatusPreconditionFailed, httperr.CodePrecondition, "precondition failed")
		return
	case httprange.NotModified:
		hd.Set("ETag", `"`+info.ETag+`"`)
		hd.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var ranges []httprange.Range
	if v := r.Header.Get("Range"); v != "" && httprange.IfRange(r.Header, info.ETag, info.Modified) {
		if ranges, err = httprange.Parse(v, info.Size); err != nil {
			hd.Set("Content-Range", httprange.Unsatisfied(info.Size))
			httperr.Write(w, http.StatusRequestedRangeNotSatisfiable, httperr.CodeRange,
				"no requested range is satisfiable: the file has "+strconv.FormatInt(info.Size, 10)+" bytes")
			return
		}
		if httprange.Total(ranges) > info.Size {
			ranges = nil // overlapping ranges asking for more than the file: send it once
		}
	}
	setHeaders(hd, info)
	hd.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	hd.Set("Accept-Ranges", "bytes")
	head := r.Method == http.MethodHead
	switch len(ranges) {
	case 0:
		hd.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.WriteHeader(http.StatusOK)
		if !head {
			copyRange(w, r, obj, httprange.Range{Length: info.Size})
		}
	case 1:
		hd.Set("Content-Range", ranges[0].ContentRange(info.Size))
		hd.Set("Content-Length", strconv.FormatInt(ranges[0].Length, 10))
		w.WriteHeader(http.StatusPartialContent)
		if !head {
			copyRange(w, r, obj, ranges[0])
		}
	default:
		serveMultipart(w, r, obj, ranges, head)
	}
}

// serveMultipart answers several ranges as one multipart/byteranges body (RFC 9110
// section 14.6), its length computed beforehand so that HEAD says it too.
func serveMultipart(w http.ResponseWriter, r *http.Request, obj *blob.Object, ranges []httprange.Range, head bool) {
	size, ctype := obj.Info.Size, obj.Info.ContentType
	part := func(rg httprange.Range) textproto.MIMEHeader {
		return textproto.MIMEHeader{"Content-Type": {ctype}, "Content-Range": {rg.ContentRange(size)}}
	}
	var n countWriter
	mw := multipart.NewWriter(&n)
	for _, rg := range ranges {
		_, _ = mw.CreatePart(part(rg))
		n += countWriter(rg.Length)
	}
	_ = mw.Close()
	hd := w.Header()
	hd.Set("Content-Type", "multipart/byteranges; boundary="+mw.Boundary())
	hd.Set("Content-Length", strconv.FormatInt(int64(n), 10))
	w.WriteHeader(http.StatusPartialContent)
	if head {
		return
	}
	out := multipart.NewWriter(w)
	_ = out.SetBoundary(mw.Boundary())
	for _, rg := range ranges {
		pw, err := out.CreatePart(part(rg))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		copyRange(pw, r, obj, rg)
	}
	if out.Close() != nil {
		panic(http.ErrAbortHandler)
	}
}

// copyRange sends one range of the object; the status line is gone, so a failure cuts
// the connection and the client sees a short body.
func copyRange(w io.Writer, r *http.Request, obj *blob.Object, rg httprange.Range) {
	if rg.Length == 0 {
		return
	}
	rd, err := obj.NewReader(r.Context(), rg.Start, rg.Length)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer rd.Close()
	if _, err := io.Copy(w, rd); err != nil {
		panic(http.ErrAbortHandler)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func setHeaders(h http.Header, info *blob.ObjectInfo) {
	h.Set("ETag", `"`+info.ETag+`"`)
	h.Set("Content-Type", info.ContentType)
	for k, v := range info.Headers {
		h.Set(k, v)
	}
	for k, v := range info.Meta {
		h.Set(MetaPrefix+k, v)
	}
}
