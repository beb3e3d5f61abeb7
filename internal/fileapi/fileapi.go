// Package fileapi owns the plain HTTP file API of the gateway (/v1/files/{bucket}/{key...}),
// the durable-stream compatible /r2/<key> routes, and the adapter that gives functions
// their bucket bindings (functions.Bucket), all over internal/blob.
//
// Bodies are streamed both ways: an upload is never held whole in memory, a download reads
// only the chunks of the requested range.
package fileapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httperr"
)

// Options configure the handlers.
type Options struct {
	// Authorize, if set, must return true for a request to be served (401 otherwise).
	Authorize func(*http.Request) bool
	// MaxMetadataBytes bounds custom metadata (names plus values), 2048 by default.
	MaxMetadataBytes int
	Logger           *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxMetadataBytes <= 0 {
		o.MaxMetadataBytes = 2048
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// MetaPrefix is the request and response header prefix of custom metadata.
const MetaPrefix = "X-Meta-"

type handler struct {
	store *blob.Store
	opts  Options
}

// NewHandler serves /v1/files/{bucket}/{key...}:
//
//	PUT|POST /v1/files/{bucket}/{key}   store the raw body (or the file of a multipart/form-data form)
//	GET|HEAD /v1/files/{bucket}/{key}   read (Range → 206, If-* → 304/412)
//	DELETE   /v1/files/{bucket}/{key}   delete (204, also when missing)
//	GET      /v1/files/{bucket}?prefix=&delimiter=&cursor=&limit=   list (JSON, sorted)
func NewHandler(store *blob.Store, opts Options) http.Handler {
	opts.defaults()
	return &handler{store: store, opts: opts}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Authorize != nil && !h.opts.Authorize(r) {
		httperr.Write(w, http.StatusUnauthorized, httperr.CodeUnauthorized, "not authorized")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/files/")
	if !ok {
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "no such route")
		return
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "no bucket in the path")
		return
	}
	if key == "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httperr.Write(w, http.StatusMethodNotAllowed, httperr.CodeMethod, "a bucket can only be listed")
			return
		}
		h.list(w, r, bucket)
		return
	}
	if err := blob.CheckKey(key); err != nil {
		writeErr(w, err)
		return
	}
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		info, err := h.put(r, bucket, key)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("ETag", `"`+info.ETag+`"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(toJSON(info))
	case http.MethodGet, http.MethodHead:
		serve(w, r, h.store, bucket, key)
	case http.MethodDelete:
		if err := h.store.DeleteObject(r.Context(), bucket, key, r.Header.Get("If-Match")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.CodeMethod, "method not allowed")
	}
}

// put stores the request body: the raw body, or the first file of a multipart form.
func (h *handler) put(r *http.Request, bucket, key string) (*blob.ObjectInfo, error) {
	opts, err := putOptions(r.Header, h.opts.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	// The store bounds the file (blob.Options.MaxObjectSize, [limits] max_file_bytes): at
	// once when Content-Length says it is too large, else when the body crosses the limit.
	body := io.Reader(r.Body)
	size := r.ContentLength
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, badRequest("malformed multipart form: " + err.Error())
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil, badRequest("the form has no file part")
			}
			if err != nil {
				return nil, badRequest("malformed multipart form: " + err.Error())
			}
			if p.FileName() == "" {
				continue
			}
			opts.ContentType = p.Header.Get("Content-Type")
			if opts.ContentType == "" {
				opts.ContentType = "application/octet-stream"
			}
			body, size = p, -1
			break
		}
	}
	return h.store.PutObject(r.Context(), bucket, key, body, size, opts)
}

// putOptions reads Content-Type, the standard headers kept with an object and X-Meta-*.
func putOptions(hd http.Header, maxMeta int) (blob.PutOptions, error) {
	var o blob.PutOptions
	o.ContentType = hd.Get("Content-Type")
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	for _, name := range []string{"Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires"} {
		if v := hd.Get(name); v != "" {
			if o.Headers == nil {
				o.Headers = map[string]string{}
			}
			o.Headers[name] = v
		}
	}
	n := 0
	for k, vs := range hd {
		if name, ok := strings.CutPrefix(k, MetaPrefix); ok && name != "" {
			if o.Meta == nil {
				o.Meta = map[string]string{}
			}
			name = strings.ToLower(name)
			o.Meta[name] = strings.Join(vs, ",")
			n += len(name) + len(o.Meta[name])
		}
	}
	if n > maxMeta {
		return o, badRequest("custom metadata larger than " + strconv.Itoa(maxMeta) + " bytes")
	}
	o.IfMatch = hd.Get("If-Match")
	if v := hd.Get("If-None-Match"); v != "" {
		if v != "*" {
			return o, badRequest("If-None-Match on upload must be *")
		}
		o.IfNoneMatch = v
	}
	return o, nil
}

type apiError struct {
	status    int
	code, msg string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) error {
	return &apiError{http.StatusBadRequest, httperr.CodeBadRequest, msg}
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		httperr.Write(w, ae.status, ae.code, ae.msg)
	case errors.Is(err, blob.ErrObjectTooLarge):
		httperr.Write(w, http.StatusRequestEntityTooLarge, httperr.CodeTooLarge, "the file is larger than the limit ([limits] max_file_bytes)")
	case errors.As(err, &mbe), errors.Is(err, blob.ErrTooLarge):
		httperr.Write(w, http.StatusRequestEntityTooLarge, httperr.CodeTooLarge, "body too large")
	case errors.Is(err, blob.ErrNoSuchBucket):
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "no such bucket")
	case errors.Is(err, blob.ErrNoSuchKey):
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "no such key")
	case errors.Is(err, blob.ErrPrecondition):
		httperr.Write(w, http.StatusPreconditionFailed, httperr.CodePrecondition, "precondition failed")
	case errors.Is(err, blob.ErrKeyNotUTF8):
		httperr.Write(w, http.StatusBadRequest, httperr.CodeInvalidUTF8, "invalid key: not valid UTF-8 (a key is 1 to 1024 bytes of UTF-8)")
	case errors.Is(err, blob.ErrBadKey):
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadName, "invalid key: 1 to 1024 bytes of UTF-8, no NUL, no '.' or '..' segment")
	case errors.Is(err, blob.ErrMetaNotUTF8):
		httperr.Write(w, http.StatusBadRequest, httperr.CodeInvalidUTF8, "Content-Type, a kept header or an X-Meta-* value is not valid UTF-8")
	case errors.Is(err, blob.ErrIncompleteBody), errors.Is(err, io.ErrUnexpectedEOF):
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "body shorter than its Content-Length")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		httperr.Write(w, http.StatusRequestTimeout, httperr.CodeTimeout, "request cancelled or timed out")
	default:
		httperr.Write(w, http.StatusInternalServerError, httperr.CodeInternal, "internal error")
	}
}

// objectJSON is an object as the JSON APIs show it (R2's field names).
type objectJSON struct {
	Key            string            `json:"key"`
	Size           int64             `json:"size"`
	ETag           string            `json:"etag"`
	HTTPETag       string            `json:"httpEtag"`
	Uploaded       time.Time         `json:"uploaded"`
	HTTPMetadata   map[string]string `json:"httpMetadata,omitempty"`
	CustomMetadata map[string]string `json:"customMetadata,omitempty"`
	Checksums      map[string]string `json:"checksums,omitempty"`
	StorageClass   string            `json:"storageClass"`
}

func toJSON(i *blob.ObjectInfo) objectJSON {
	o := objectJSON{Key: i.Key, Size: i.Size, ETag: i.ETag, HTTPETag: `"` + i.ETag + `"`, Uploaded: i.Modified,
		CustomMetadata: i.Meta, Checksums: i.Checksums, StorageClass: "Standard"}
	if i.ContentType != "" || len(i.Headers) > 0 {
		o.HTTPMetadata = map[string]string{}
		if i.ContentType != "" {
			o.HTTPMetadata["contentType"] = i.ContentType
		}
		for k, v := range i.Headers {
			n := strings.ReplaceAll(k, "-", "")
			o.HTTPMetadata[strings.ToLower(n[:1])+n[1:]] = v
		}
	}
	return o
}

type listJSON struct {
	Objects           []objectJSON `json:"objects"`
	DelimitedPrefixes []string     `json:"delimitedPrefixes"`
	Truncated         bool         `json:"truncated"`
	Cursor            string       `json:"cursor,omitempty"`
}

func encodeCursor(next string) string { return base64.RawURLEncoding.EncodeToString([]byte(next)) }

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return string(b), err
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, bucket string) {
	writeList(w, r, h.store, bucket)
}

func writeList(w http.ResponseWriter, r *http.Request, store *blob.Store, bucket string) {
	q := r.URL.Query()
	opts := blob.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), StartAfter: q.Get("startAfter"), Limit: 1000, WithMetadata: true}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "limit must be 1 to 1000")
			return
		}
		opts.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		next, err := decodeCursor(c)
		if err != nil {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "bad cursor")
			return
		}
		opts.Continue = next
	}
	res, err := store.List(r.Context(), bucket, opts)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := listJSON{Objects: []objectJSON{}, DelimitedPrefixes: res.CommonPrefixes, Truncated: res.Truncated}
	if out.DelimitedPrefixes == nil {
		out.DelimitedPrefixes = []string{}
	}
	for i := range res.Objects {
		out.Objects = append(out.Objects, toJSON(&res.Objects[i]))
	}
	if res.Truncated {
		out.Cursor = encodeCursor(res.Next)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(out)
}
