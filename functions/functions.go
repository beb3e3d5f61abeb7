// Package functions is the public SDK for Holdfast functions: stateless, serverless-style
// handlers that run on every gateway, like a Worker's fetch handler.
//
// A function gets the request and an Env holding the bindings declared in holdfast.toml:
// object namespaces, file buckets and plain vars. It imports nothing else of Holdfast, so a
// package of functions depends on this SDK alone.
package functions

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// Handler serves one request. It is called concurrently.
type Handler interface {
	ServeFetch(w http.ResponseWriter, r *http.Request, env Env)
}

// HandlerFunc adapts a plain function to Handler.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, env Env)

// ServeFetch calls f.
func (f HandlerFunc) ServeFetch(w http.ResponseWriter, r *http.Request, env Env) { f(w, r, env) }

var _ Handler = HandlerFunc(nil)

// Env holds a function's bindings.
type Env interface {
	// Var returns the [vars] entry name and whether it is set.
	Var(name string) (string, bool)
	// Namespace returns the object namespace bound as binding, or nil.
	Namespace(binding string) Namespace
	// Bucket returns the file bucket bound as binding, or nil.
	Bucket(binding string) Bucket
}

// Namespace is one object class, reached by object name.
type Namespace interface {
	// Get returns a stub for the object called name. It does not activate the object: the
	// first request does. ErrBadName is returned for a name outside the name grammar.
	Get(name string) (Stub, error)
	// NewUniqueName returns a fresh random name (64 hex digits) no other caller will get.
	NewUniqueName() string
}

// Stub sends requests to one object.
type Stub interface {
	// Name is the object's name.
	Name() string
	// Fetch sends req to the object and returns its response. The caller closes the body.
	Fetch(ctx context.Context, req *http.Request) (*http.Response, error)
	// ServeHTTP hands the incoming request to the object, WebSocket upgrades included, and
	// writes its response to w. It is how a function passes a client through to an object.
	ServeHTTP(w http.ResponseWriter, r *http.Request)
}

// ErrBadName is returned for an object name outside the name grammar.
var ErrBadName = errors.New("functions: bad object name")

// ErrNoSuchObject is returned by Bucket.Get and Bucket.Head for a missing key.
var ErrNoSuchObject = errors.New("functions: no such object")

// ErrPreconditionFailed is returned by Bucket.Get and Bucket.Put when a condition fails.
var ErrPreconditionFailed = errors.New("functions: precondition failed")

// Bucket is an R2-like blob bucket.
type Bucket interface {
	Head(ctx context.Context, key string) (*ObjectInfo, error)
	Get(ctx context.Context, key string, opts *GetOptions) (*Object, error)
	Put(ctx context.Context, key string, body io.Reader, opts *PutOptions) (*ObjectInfo, error)
	Delete(ctx context.Context, keys ...string) error
	List(ctx context.Context, opts *ListOptions) (*ListResult, error)
}

// ObjectInfo describes a stored blob.
type ObjectInfo struct {
	Key         string
	Size        int64
	ETag        string // quoted, as HTTP and S3 show it
	Uploaded    time.Time
	ContentType string
	Metadata    map[string]string
}

// Object is a blob being read. The caller closes Body.
type Object struct {
	ObjectInfo
	// Body yields the requested range, or everything.
	Body io.ReadCloser
	// Offset and Length say which bytes Body yields.
	Offset, Length int64
}

// GetOptions narrows a Get.
type GetOptions struct {
	// Range: Offset and Length (Length < 0 means to the end). Suffix > 0 means the last
	// Suffix bytes and overrides Offset and Length.
	Offset, Length, Suffix int64
	Ranged                 bool
	IfMatch, IfNoneMatch   string
}

// PutOptions describes what Put stores.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string
	// Size, when >= 0, is the exact body length; -1 means unknown.
	Size    int64
	IfMatch string
}

// ListOptions select a page of keys in lexical order.
type ListOptions struct {
	Prefix, Delimiter, Cursor, StartAfter string
	Limit                                 int
}

// ListResult is one page.
type ListResult struct {
	Objects           []ObjectInfo
	DelimitedPrefixes []string
	Truncated         bool
	Cursor            string
}
