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
	"github.com/nats-io/nats.go"
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
	m, err := s.encode(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, in.h.opts.RequestTimeout)
	defer cancel()
	return s.send(ctx, req, m)
}

// Go starts the call on a goroutine of its own and hands the answer back to the instance
// as an event (see calls.go).
func (s *stub) Go(ctx context.Context, req *http.Request, done func(*http.Response, error) error) error {
	in := s.ns.in
	if err := in.st.inEvent(); err != nil {
		return err
	}
	if in.calls >= in.h.opts.Limits.MaxCalls {
		return fmt.Errorf("%w: %d", objects.ErrTooManyCalls, in.h.opts.Limits.MaxCalls)
	}
	m, err := s.encode(req)
	if err != nil {
		return err
	}
	in.startCall(ctx, func(ctx context.Context) (*http.Response, error) { return s.send(ctx, req, m) }, done)
	return nil
}

// encode reads req's body (bounded) and makes the request message: on the event loop,
// before the call leaves, so that the caller may reuse req's body afterwards.
func (s *stub) encode(req *http.Request) (*nats.Msg, error) {
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
	req.Body = io.NopCloser(bytes.NewReader(nil))
	return wire.EncodeRequest("", s.ns.class, s.name, req, body), nil
}

func (s *stub) send(ctx context.Context, req *http.Request, m *nats.Msg) (*http.Response, error) {
	reply, err := s.ns.in.h.client.Request(ctx, s.ns.class, s.name, m)
	if err != nil {
		return nil, err
	}
	return wire.ToHTTPResponse(reply, req), nil
}
