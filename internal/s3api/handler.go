// Package s3api owns Holdfast's S3-compatible HTTP endpoint: routing (path-style and
// virtual-host-style), SigV4 authentication through internal/sigv4, the S3 operations real
// clients use (buckets, objects, listing v1/v2, copy, multi-delete, multipart, ranges and
// conditionals, checksums) over internal/blob, and S3's XML errors. Anything it does not
// support answers NotImplemented rather than a success that would be wrong.
package s3api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/sigv4"
)

// Credential is one access key / secret key pair.
type Credential struct {
	AccessKey, SecretKey string
}

// Options configure the endpoint.
type Options struct {
	// Credentials accepted. With none, every request is refused (AccessDenied).
	Credentials []Credential
	// Region reported by GetBucketLocation ("us-east-1"). Requests signed for any region
	// are accepted.
	Region string
	// BaseDomains enable virtual-host-style addressing: a request for
	// "<bucket>.<domain>[:port]" addresses bucket.
	BaseDomains []string
	// MaxMetadataBytes bounds user metadata (names plus values), 2048 like S3.
	MaxMetadataBytes int
	// MaxObjectSize bounds one PUT or part: 5 GiB like S3 by default, and never more than
	// the store's MaxObjectSize, which also bounds a completed multipart upload's total.
	MaxObjectSize int64
	Logger        *slog.Logger
	// Metrics counts the requests by operation; default counted, exported nowhere.
	Metrics *metrics.Files
}

type handler struct {
	store   *blob.Store
	opts    Options
	v       *sigv4.Verifier
	log     *slog.Logger
	metrics *metrics.Files
}

// NewHandler returns the S3 endpoint over store.
func NewHandler(store *blob.Store, opts Options) http.Handler {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.MaxMetadataBytes <= 0 {
		opts.MaxMetadataBytes = 2048
	}
	if opts.MaxObjectSize <= 0 {
		opts.MaxObjectSize = 5 << 30
	}
	opts.MaxObjectSize = min(opts.MaxObjectSize, store.Options().MaxObjectSize)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	creds := map[string]string{}
	for _, c := range opts.Credentials {
		creds[c.AccessKey] = c.SecretKey
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewFiles(nil)
	}
	h := &handler{store: store, opts: opts, log: opts.Logger, metrics: opts.Metrics}
	h.v = &sigv4.Verifier{Secret: func(ak string) (string, bool) {
		s, ok := creds[ak]
		return s, ok
	}}
	return h
}

// request is one request being served.
type request struct {
	*http.Request
	w      http.ResponseWriter
	id     string
	bucket string
	key    string
	auth   *sigv4.Result
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (h *handler) route(r *http.Request) (bucket, key string) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.ToLower(host)
	for _, d := range h.opts.BaseDomains {
		d = strings.ToLower(d)
		if strings.HasSuffix(host, "."+d) {
			return host[:len(host)-len(d)-1], strings.TrimPrefix(r.URL.Path, "/")
		}
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	sw := metrics.NewRecorder(w)
	rq := &request{Request: r, w: sw, id: newRequestID()}
	w.Header().Set("x-amz-request-id", rq.id)
	w.Header().Set("x-amz-id-2", rq.id)
	w.Header().Set("Server", "Holdfast")
	rq.bucket, rq.key = h.route(r)
	op, serve := h.operation(rq)
	defer func() {
		h.metrics.S3Requests.WithLabelValues(op, sw.CodeLabel()).Inc()
		h.metrics.S3Duration.WithLabelValues(op).Observe(time.Since(began).Seconds())
	}()
	if op == opPostObject {
		serve() // authenticated by its signed policy
		return
	}
	res, err := h.v.Verify(r)
	if err != nil {
		h.fail(rq, err)
		return
	}
	rq.auth = res
	serve()
}

// Sub-resources (query parameters) naming operations this endpoint does not implement.
var unsupportedBucket = []string{"acl", "policy", "policyStatus", "cors", "lifecycle", "tagging", "encryption",
	"notification", "object-lock", "replication", "website", "logging", "ownershipControls",
	"publicAccessBlock", "accelerate", "requestPayment", "intelligent-tiering", "analytics", "metrics",
	"inventory", "select", "restore", "torrent", "retention", "legal-hold", "session"}

func has(r *http.Request, name string) bool {
	_, ok := r.URL.Query()[name]
	return ok
}

// Operation names of requests that are not an S3 operation this endpoint serves.
const (
	opPostObject  = "PostObject"
	opUnsupported = "Unsupported" // answered NotImplemented, MethodNotAllowed or InvalidArgument
)

// operation names the S3 operation rq asks for (the label of the request metrics) and
// returns what serves it.
func (h *handler) operation(rq *request) (string, func()) {
	fail := func(err error) (string, func()) { return opUnsupported, func() { h.fail(rq, err) } }
	q := rq.URL.Query()
	if rq.bucket != "" && isPostUpload(rq.Request, rq.key) {
		return opPostObject, func() { h.postObject(rq) }
	}
	for _, s := range unsupportedBucket {
		if _, ok := q[s]; ok {
			return fail(errNotImplemented("the " + s + " sub-resource"))
		}
	}
	if rq.bucket == "" {
		if rq.Method == http.MethodGet {
			return "ListBuckets", func() { h.listBuckets(rq) }
		}
		return fail(errMethod)
	}
	if rq.key == "" {
		switch rq.Method {
		case http.MethodPut:
			if has(rq.Request, "versioning") {
				return fail(errNotImplemented("bucket versioning"))
			}
			return "CreateBucket", func() { h.createBucket(rq) }
		case http.MethodHead:
			return "HeadBucket", func() { h.headBucket(rq) }
		case http.MethodDelete:
			return "DeleteBucket", func() { h.deleteBucket(rq) }
		case http.MethodGet:
			switch {
			case has(rq.Request, "location"):
				return "GetBucketLocation", func() { h.getLocation(rq) }
			case has(rq.Request, "uploads"):
				return "ListMultipartUploads", func() { h.listUploads(rq) }
			case has(rq.Request, "versioning"):
				return "GetBucketVersioning", func() { h.getVersioning(rq) }
			case has(rq.Request, "versions"):
				return "ListObjectVersions", func() { h.listVersions(rq) }
			case q.Get("list-type") == "2":
				return "ListObjectsV2", func() { h.listObjects(rq, 2) }
			case q.Get("list-type") != "":
				return fail(errInvalidArgument("list-type must be 2"))
			default:
				return "ListObjects", func() { h.listObjects(rq, 1) }
			}
		case http.MethodPost:
			if has(rq.Request, "delete") {
				return "DeleteObjects", func() { h.deleteObjects(rq) }
			}
			return fail(errNotImplemented("this POST operation on a bucket"))
		}
		return fail(errMethod)
	}
	if err := keyError(rq.key); err != nil {
		return fail(err)
	}
	uploadID, hasUpload := q["uploadId"]
	switch rq.Method {
	case http.MethodPut:
		switch {
		case hasUpload:
			return "UploadPart", func() { h.uploadPart(rq, uploadID[0]) }
		case rq.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject", func() { h.copyObject(rq) }
		default:
			return "PutObject", func() { h.putObject(rq) }
		}
	case http.MethodGet:
		switch {
		case hasUpload:
			return "ListParts", func() { h.listParts(rq, uploadID[0]) }
		case has(rq.Request, "attributes"):
			return "GetObjectAttributes", func() { h.getAttributes(rq) }
		}
		return "GetObject", func() { h.getObject(rq, false) }
	case http.MethodHead:
		return "HeadObject", func() { h.getObject(rq, true) }
	case http.MethodDelete:
		if hasUpload {
			return "AbortMultipartUpload", func() { h.abortUpload(rq, uploadID[0]) }
		}
		return "DeleteObject", func() { h.deleteObject(rq) }
	case http.MethodPost:
		switch {
		case has(rq.Request, "uploads"):
			return "CreateMultipartUpload", func() { h.createUpload(rq) }
		case hasUpload:
			return "CompleteMultipartUpload", func() { h.completeUpload(rq, uploadID[0]) }
		}
		return fail(errNotImplemented("this POST operation"))
	}
	return fail(errMethod)
}
