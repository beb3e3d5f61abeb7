package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Files is the file store's metrics: the S3 endpoint's requests and the bytes the store
// reads and writes for every API (S3, /v1/files, /r2, functions' bucket bindings).
type Files struct {
	S3Requests   *prometheus.CounterVec   // operation, code
	S3Duration   *prometheus.HistogramVec // operation
	BytesRead    prometheus.Counter
	BytesWritten prometheus.Counter
}

// NewFiles registers the file store's metrics on r (nil: counted, exported nowhere).
func NewFiles(r prometheus.Registerer) *Files {
	return &Files{
		S3Requests: counter(r, "s3_requests_total",
			"Requests to the S3-compatible endpoint, by operation (S3's names: PutObject, ListObjectsV2, ...) and status code.", "operation", "code"),
		S3Duration: histogram(r, "s3_request_duration_seconds",
			"Time to answer an S3 request, body included, by operation.", requestBuckets, "operation"),
		BytesRead: register(r, prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace,
			Name: "files_read_bytes_total", Help: "Bytes of file contents read from the store."})),
		BytesWritten: register(r, prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace,
			Name: "files_written_bytes_total", Help: "Bytes of file contents written to the store (objects and multipart parts)."})),
	}
}
