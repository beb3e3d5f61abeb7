package fileapi

import (
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httprange"
)

type r2Handler struct {
	store  *blob.Store
	bucket string
	opts   Options
}

// NewR2CompatHandler serves durable-stream's file routes on one bucket, as its client
// calls them:
//
//	HEAD   /r2/<key>   headers (Content-Type..., ETag); 400 without a key; 404 if missing
//	GET    /r2/<key>   the object (Range "bytes=a-b" → 206 with Content-Range; If-* → 304)
//	GET    /r2/?prefix=&delimiter=&cursor=   R2's list JSON {objects, truncated, cursor, delimitedPrefixes}
//	POST   /r2/<key>   store the body with the request's HTTP metadata; "Put <key> successfully!"
//	DELETE /r2/<key>   delete; 200 with an empty body
//
// Authorize carries the seed's ?apiKey= check (401 "Unauthorized").
func NewR2CompatHandler(store *blob.Store, bucket string, opts Options) http.Handler {
	opts.defaults()
	return &r2Handler{store: store, bucket: bucket, opts: opts}
}

func notFound(w http.ResponseWriter, key string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, `<html><body>R2 object "<b>`+html.EscapeString(key)+`</b>" not found</body></html>`)
}

func (h *r2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Authorize != nil && !h.opts.Authorize(r) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/r2/")
	if !ok {
		if r.URL.Path != "/r2" {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		key = ""
	}
	if key != "" && blob.CheckKey(key) != nil {
		http.Error(w, "invalid key", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodHead:
		if key == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		info, err := h.store.HeadObject(ctx, h.bucket, key)
		if err != nil {
			h.fail(w, key, err)
			return
		}
		setHeaders(w.Header(), info)
		w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		if key == "" {
			writeList(w, r, h.store, h.bucket)
			return
		}
		obj, err := h.store.OpenObject(ctx, h.bucket, key)
		if err != nil {
			h.fail(w, key, err)
			return
		}
		setHeaders(w.Header(), &obj.Info)
		// R2's onlyIf: a failed condition gives the object without a body (304).
		if v := r.Header.Get("If-Match"); v != "" && !httprange.ETagMatch(v, obj.Info.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if v := r.Header.Get("If-None-Match"); v != "" && httprange.ETagMatch(v, obj.Info.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		off, n, status := int64(0), obj.Info.Size, http.StatusOK
		// One range, as R2's get: several, an unknown unit or a malformed one is ignored.
		ranges, err := httprange.Parse(r.Header.Get("Range"), obj.Info.Size)
		if err != nil {
			w.Header().Set("Content-Range", httprange.Unsatisfied(obj.Info.Size))
			http.Error(w, "Range Not Satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		if len(ranges) == 1 {
			off, n, status = ranges[0].Start, ranges[0].Length, http.StatusPartialContent
			w.Header().Set("Content-Range", ranges[0].ContentRange(obj.Info.Size))
		}
		body, err := obj.NewReader(ctx, off, n)
		if err != nil {
			h.fail(w, key, err)
			return
		}
		defer body.Close()
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(status)
		if _, err := io.Copy(w, body); err != nil {
			panic(http.ErrAbortHandler)
		}
	case http.MethodPost, http.MethodPut:
		if key == "" {
			http.Error(w, "no key", http.StatusBadRequest)
			return
		}
		opts, err := putOptions(r.Header, h.opts.MaxMetadataBytes)
		if err != nil {
			writeErr(w, err)
			return
		}
		opts.IfMatch, opts.IfNoneMatch = "", ""
		info, err := h.store.PutObject(ctx, h.bucket, key, r.Body, r.ContentLength, opts)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("ETag", `"`+info.ETag+`"`)
		io.WriteString(w, "Put "+key+" successfully!")
	case http.MethodDelete:
		if key != "" {
			if err := h.store.DeleteObject(ctx, h.bucket, key, ""); err != nil {
				writeErr(w, err)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "Unsupported method", http.StatusBadRequest)
	}
}

func (h *r2Handler) fail(w http.ResponseWriter, key string, err error) {
	if err == blob.ErrNoSuchKey || err == blob.ErrNoSuchBucket {
		notFound(w, key)
		return
	}
	writeErr(w, err)
}
