package metrics

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
)

// Recorder wraps a ResponseWriter to remember the status code a request was answered
// with, for the request metrics. It passes Flush, Hijack and Unwrap through; a request
// whose connection was taken over (a WebSocket upgrade) counts as 101 unless a status was
// written first.
type Recorder struct {
	http.ResponseWriter
	code int
}

// NewRecorder wraps w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// Code is the status code answered, 200 when nothing was written yet (net/http's default).
func (r *Recorder) Code() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// CodeLabel is Code as a label value.
func (r *Recorder) CodeLabel() string { return strconv.Itoa(r.Code()) }

func (r *Recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *Recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

func (r *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.code == 0 {
		r.code = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

var (
	_ http.Hijacker = (*Recorder)(nil)
	_ http.Flusher  = (*Recorder)(nil)
)
