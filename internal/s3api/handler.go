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

	"github.com/holdfast/holdfast/internal/blob"
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
}

type handler struct {
	store *blob.Store
	opts  Options
	v     *sigv4.Verifier
	log   *slog.Logger
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
	h := &handler{store: store, opts: opts, log: opts.Logger}
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
	rq := &request{Request: r, w: w, id: newRequestID()}
	w.Header().Set("x-amz-request-id", rq.id)
	w.Header().Set("x-amz-id-2", rq.id)
	w.Header().Set("Server", "Holdfast")
	rq.bucket, rq.key = h.route(r)
	if rq.bucket != "" && isPostUpload(r, rq.key) {
		h.postObject(rq) // authenticated by its signed policy
		return
	}
	res, err := h.v.Verify(r)
	if err != nil {
		h.fail(rq, err)
		return
	}
	rq.auth = res
	h.dispatch(rq)
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

func (h *handler) dispatch(rq *request) {
	q := rq.URL.Query()
	for _, s := range unsupportedBucket {
		if _, ok := q[s]; ok {
			h.fail(rq, errNotImplemented("the "+s+" sub-resource"))
			return
		}
	}
	if rq.bucket == "" {
		if rq.Method == http.MethodGet {
			h.listBuckets(rq)
			return
		}
		h.fail(rq, errMethod)
		return
	}
	if rq.key == "" {
		switch rq.Method {
		case http.MethodPut:
			if has(rq.Request, "versioning") {
				h.fail(rq, errNotImplemented("bucket versioning"))
				return
			}
			h.createBucket(rq)
		case http.MethodHead:
			h.headBucket(rq)
		case http.MethodDelete:
			h.deleteBucket(rq)
		case http.MethodGet:
			switch {
			case has(rq.Request, "location"):
				h.getLocation(rq)
			case has(rq.Request, "uploads"):
				h.listUploads(rq)
			case has(rq.Request, "versioning"):
				h.getVersioning(rq)
			case has(rq.Request, "versions"):
				h.listVersions(rq)
			case q.Get("list-type") == "2":
				h.listObjects(rq, 2)
			case q.Get("list-type") != "":
				h.fail(rq, errInvalidArgument("list-type must be 2"))
			default:
				h.listObjects(rq, 1)
			}
		case http.MethodPost:
			if has(rq.Request, "delete") {
				h.deleteObjects(rq)
				return
			}
			h.fail(rq, errNotImplemented("this POST operation on a bucket"))
		default:
			h.fail(rq, errMethod)
		}
		return
	}
	if err := keyError(rq.key); err != nil {
		h.fail(rq, err)
		return
	}
	uploadID, hasUpload := q["uploadId"]
	switch rq.Method {
	case http.MethodPut:
		switch {
		case hasUpload:
			h.uploadPart(rq, uploadID[0])
		case rq.Header.Get("X-Amz-Copy-Source") != "":
			h.copyObject(rq)
		default:
			h.putObject(rq)
		}
	case http.MethodGet:
		if hasUpload {
			h.listParts(rq, uploadID[0])
			return
		}
		if has(rq.Request, "attributes") {
			h.getAttributes(rq)
			return
		}
		h.getObject(rq, false)
	case http.MethodHead:
		h.getObject(rq, true)
	case http.MethodDelete:
		if hasUpload {
			h.abortUpload(rq, uploadID[0])
			return
		}
		h.deleteObject(rq)
	case http.MethodPost:
		switch {
		case has(rq.Request, "uploads"):
			h.createUpload(rq)
		case hasUpload:
			h.completeUpload(rq, uploadID[0])
		default:
			h.fail(rq, errNotImplemented("this POST operation"))
		}
	default:
		h.fail(rq, errMethod)
	}
}
