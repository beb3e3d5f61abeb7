package fileapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/holdfast/holdfast/internal/blob"
)

// serve answers GET and HEAD of an object with net/http's ServeContent over a seekable
// view of it: single and multiple ranges (206, 416), If-Match, If-None-Match,
// If-Modified-Since, If-Unmodified-Since and If-Range (304, 412).
func serve(w http.ResponseWriter, r *http.Request, store *blob.Store, bucket, key string) {
	obj, err := store.OpenObject(r.Context(), bucket, key)
	if err != nil {
		writeErr(w, err)
		return
	}
	setHeaders(w.Header(), &obj.Info)
	rs := &seeker{ctx: r.Context(), obj: obj}
	defer rs.Close()
	http.ServeContent(w, r, "", obj.Info.Modified, rs)
	if rs.err != nil {
		// The status line is gone: abort so that the client sees a short body.
		panic(http.ErrAbortHandler)
	}
}

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

// seeker is an io.ReadSeeker over an opened object version; each Seek starts a new
// ranged reader, so reading a range costs O(range).
type seeker struct {
	ctx context.Context
	obj *blob.Object
	off int64
	r   io.ReadCloser
	err error
}

func (s *seeker) Read(p []byte) (int, error) {
	if s.r == nil {
		if s.off >= s.obj.Info.Size {
			return 0, io.EOF
		}
		r, err := s.obj.NewReader(s.ctx, s.off, -1)
		if err != nil {
			s.err = err
			return 0, err
		}
		s.r = r
	}
	n, err := s.r.Read(p)
	s.off += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (s *seeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.off + offset
	case io.SeekEnd:
		abs = s.obj.Info.Size + offset
	}
	if abs < 0 {
		return 0, errors.New("fileapi: negative offset")
	}
	if abs != s.off && s.r != nil {
		s.r.Close()
		s.r = nil
	}
	s.off = abs
	return abs, nil
}

func (s *seeker) Close() error {
	if s.r != nil {
		return s.r.Close()
	}
	return nil
}
