package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
)

// env is what functions see of the gateway: vars, object namespaces and buckets.
type env struct{ g *Gateway }

var (
	_ functions.Env       = (*env)(nil)
	_ functions.Namespace = (*namespace)(nil)
	_ functions.Stub      = (*stub)(nil)
)

func (e *env) Var(name string) (string, bool) {
	v, ok := e.g.opts.Vars[name]
	return v, ok
}

func (e *env) Namespace(binding string) functions.Namespace {
	class, ok := e.g.opts.Namespaces[binding]
	if !ok {
		return nil
	}
	return &namespace{g: e.g, class: class}
}

func (e *env) Bucket(binding string) functions.Bucket { return e.g.opts.Buckets[binding] }

type namespace struct {
	g     *Gateway
	class string
}

func (n *namespace) Get(name string) (functions.Stub, error) {
	if err := names.Validate(name); err != nil {
		return nil, fmt.Errorf("%w: %w", functions.ErrBadName, err)
	}
	return &stub{n: n, name: name}, nil
}

func (n *namespace) NewUniqueName() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type stub struct {
	n    *namespace
	name string
}

func (s *stub) Name() string { return s.name }

func (s *stub) Fetch(ctx context.Context, req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, s.n.g.opts.MaxBodyBytes+1))
		if err != nil {
			return nil, err
		}
		if int64(len(body)) > s.n.g.opts.MaxBodyBytes {
			return nil, fmt.Errorf("gateway: request body over %d bytes", s.n.g.opts.MaxBodyBytes)
		}
	}
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	reply, err := s.n.g.request(ctx, s.n.class, s.name, wire.EncodeRequest("", s.n.class, s.name, req, body))
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(nil))
	return wire.ToHTTPResponse(reply, req), nil
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.n.g.serveObject(w, r, s.n.class, s.name)
}
