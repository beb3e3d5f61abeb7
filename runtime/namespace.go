package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
)

// maxSubrequestBody bounds a body one object sends another.
const maxSubrequestBody = 1 << 20

type namespace struct {
	in    *instance
	class string
}

type stub struct {
	ns   *namespace
	name string
}

var (
	_ objects.Namespace = (*namespace)(nil)
	_ objects.Stub      = (*stub)(nil)
)

func (s *state) Namespace(binding string) objects.Namespace {
	class, ok := s.in.h.opts.Namespaces[binding]
	if !ok {
		return nil
	}
	return &namespace{in: s.in, class: class}
}

func (n *namespace) Get(name string) (objects.Stub, error) {
	if err := names.Validate(name); err != nil {
		return nil, fmt.Errorf("%w: %w", objects.ErrBadName, err)
	}
	return &stub{ns: n, name: name}, nil
}

func (s *stub) Name() string { return s.name }

func (s *stub) Fetch(ctx context.Context, req *http.Request) (*http.Response, error) {
	in := s.ns.in
	if s.ns.class == in.class && s.name == in.name {
		return nil, objects.ErrSelfCall
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(req.Body, maxSubrequestBody+1)); err != nil {
			return nil, err
		}
		if len(body) > maxSubrequestBody {
			return nil, fmt.Errorf("runtime: subrequest body over %d bytes", maxSubrequestBody)
		}
	}
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	ctx, cancel := context.WithTimeout(ctx, in.h.opts.RequestTimeout)
	defer cancel()
	reply, err := in.h.client.Request(ctx, s.ns.class, s.name, wire.EncodeRequest("", s.ns.class, s.name, req, body))
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(nil))
	return wire.ToHTTPResponse(reply, req), nil
}
