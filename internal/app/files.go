package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/fileapi"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/s3api"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DevS3Credential is the S3 key pair `holdfast dev` accepts when the config names none,
// like MinIO's minioadmin. Production roles have no default credentials.
var DevS3Credential = config.S3Credential{AccessKey: "holdfast", SecretKey: "holdfastdev"}

// Files serves the file buckets: the /v1/files and /r2 routes, the S3 endpoint, and the
// functions' bucket bindings. Its store opens in the background (it needs JetStream);
// until then its handlers answer 503.
type Files struct {
	cfg   *config.Config
	log   *slog.Logger
	store atomic.Pointer[blob.Store]
	files atomic.Pointer[http.Handler]
	r2    atomic.Pointer[http.Handler]
	s3    atomic.Pointer[http.Handler]
	s3Opt s3api.Options
	done  chan struct{}

	metrics *metrics.Files
}

// StartFiles opens the blob store on nc, retrying until it works or ctx ends, and makes
// sure every declared bucket exists.
// m counts the S3 requests and the bytes read and written (nil: exported nowhere).
func StartFiles(ctx context.Context, nc *nats.Conn, cfg *config.Config, s3creds []config.S3Credential, replicas int, log *slog.Logger, m *metrics.Files) *Files {
	if m == nil {
		m = metrics.NewFiles(nil)
	}
	f := &Files{cfg: cfg, log: log, metrics: m, done: make(chan struct{})}
	for _, c := range s3creds {
		f.s3Opt.Credentials = append(f.s3Opt.Credentials, s3api.Credential{AccessKey: c.AccessKey, SecretKey: c.SecretKey})
	}
	f.s3Opt.BaseDomains = []string{"localhost"}
	f.s3Opt.Logger = log
	f.s3Opt.Metrics = m
	go f.open(ctx, nc, replicas)
	return f
}

func (f *Files) open(ctx context.Context, nc *nats.Conn, replicas int) {
	defer close(f.done)
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		err := f.try(ctx, nc, replicas)
		if err == nil {
			return
		}
		f.log.Warn("file store not ready; retrying", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (f *Files) try(ctx context.Context, nc *nats.Conn, replicas int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := blob.Open(octx, js, blob.Options{Replicas: replicas, MaxObjectSize: f.cfg.Limits.MaxFileBytes, Logger: f.log, Metrics: f.metrics})
	if err != nil {
		return err
	}
	for _, b := range f.cfg.R2Buckets {
		if err := st.EnsureBucket(octx, b.BucketName); err != nil {
			_ = st.Close()
			return fmt.Errorf("bucket %s: %w", b.BucketName, err)
		}
	}
	fopts := fileapi.Options{MaxMetadataBytes: 2048, Logger: f.log}
	files := fileapi.NewHandler(st, fopts)
	f.files.Store(&files)
	if len(f.cfg.R2Buckets) > 0 {
		r2 := fileapi.NewR2CompatHandler(st, f.cfg.R2Buckets[0].BucketName, fopts)
		f.r2.Store(&r2)
	}
	s3 := s3api.NewHandler(st, f.s3Opt)
	f.s3.Store(&s3)
	f.store.Store(st)
	return nil
}

// Ready says whether the file store is open (it opens in the background, retrying).
func (f *Files) Ready() error {
	if f.store.Load() == nil {
		return errors.New("the file store is not open yet")
	}
	return nil
}

// Close stops the store's background work.
func (f *Files) Close() {
	if st := f.store.Load(); st != nil {
		_ = st.Close()
	}
}

func lazy(p *atomic.Pointer[http.Handler], what string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := p.Load()
		if h == nil {
			w.Header().Set("Retry-After", "1")
			httperr.Write(w, http.StatusServiceUnavailable, httperr.CodeUnavailable, what+" is not ready yet")
			return
		}
		(*h).ServeHTTP(w, r)
	})
}

// Mounts are the gateway's file routes: /v1/files/ and, for durable-stream's clients,
// /r2/ on the first declared bucket.
func (f *Files) Mounts() map[string]http.Handler {
	m := map[string]http.Handler{"/v1/files/": lazy(&f.files, "the file store")}
	if len(f.cfg.R2Buckets) > 0 {
		m["/r2/"] = lazy(&f.r2, "the file store")
	}
	return m
}

// S3Handler is the S3-compatible endpoint, for its own listener.
func (f *Files) S3Handler() http.Handler { return lazy(&f.s3, "the S3 endpoint") }

// Buckets are the functions' bucket bindings.
func (f *Files) Buckets() map[string]functions.Bucket {
	out := map[string]functions.Bucket{}
	for _, b := range f.cfg.R2Buckets {
		out[b.Binding] = &lazyBucket{f: f, name: b.BucketName}
	}
	return out
}

// errFilesNotReady is what a bucket binding says before the store opened.
var errFilesNotReady = errors.New("holdfast: the file store is not ready yet")

// lazyBucket is a bucket binding whose store may still be opening.
type lazyBucket struct {
	f    *Files
	name string
}

var _ functions.Bucket = (*lazyBucket)(nil)

func (b *lazyBucket) bucket() (functions.Bucket, error) {
	st := b.f.store.Load()
	if st == nil {
		return nil, errFilesNotReady
	}
	return fileapi.NewBucket(st, b.name), nil
}

func (b *lazyBucket) Head(ctx context.Context, key string) (*functions.ObjectInfo, error) {
	x, err := b.bucket()
	if err != nil {
		return nil, err
	}
	return x.Head(ctx, key)
}

func (b *lazyBucket) Get(ctx context.Context, key string, o *functions.GetOptions) (*functions.Object, error) {
	x, err := b.bucket()
	if err != nil {
		return nil, err
	}
	return x.Get(ctx, key, o)
}

func (b *lazyBucket) Put(ctx context.Context, key string, body io.Reader, o *functions.PutOptions) (*functions.ObjectInfo, error) {
	x, err := b.bucket()
	if err != nil {
		return nil, err
	}
	return x.Put(ctx, key, body, o)
}

func (b *lazyBucket) Delete(ctx context.Context, keys ...string) error {
	x, err := b.bucket()
	if err != nil {
		return err
	}
	return x.Delete(ctx, keys...)
}

func (b *lazyBucket) List(ctx context.Context, o *functions.ListOptions) (*functions.ListResult, error) {
	x, err := b.bucket()
	if err != nil {
		return nil, err
	}
	return x.List(ctx, o)
}
