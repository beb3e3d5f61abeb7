package streamclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// The Durable Streams routes answer protocol outcomes (404, 409, 410, ...) with a status
// and a DSResult: those come back as a streamapi.DSAnswer, an error body (400, 413, 500)
// as a DSAnswer with Code set, and only a failure to reach the object, or an answer this
// client cannot read, as an error.

// dsAnswer reads a /ds route's answer of status st.
func dsAnswer(st int, data []byte) (streamapi.DSAnswer, error) {
	if st >= 300 {
		if e, ok := streamapi.DecodeError(st, data); ok {
			return streamapi.DSAnswer{Status: st, Code: e.Code, DSResult: streamapi.DSResult{Message: e.Message}}, nil
		}
	}
	a := streamapi.DSAnswer{Status: st}
	if len(data) > 0 && json.Unmarshal(data, &a.DSResult) != nil {
		return a, &streamapi.Error{Status: st, Code: streamapi.CodeInternal, Message: fmt.Sprintf("stream object answered %d with a body this gateway cannot read", st)}
	}
	return a, nil
}

func (c *Client) ds(ctx context.Context, name, method, uri string, v any) (streamapi.DSAnswer, error) {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return streamapi.DSAnswer{}, &streamapi.Error{Code: streamapi.CodeInternal, Message: err.Error(), Err: err}
		}
	}
	st, data, err := c.do(ctx, name, method, uri, "application/json", body)
	if err != nil {
		return streamapi.DSAnswer{}, err
	}
	return dsAnswer(st, data)
}

// Create is PUT /ds: 201 created, 200 exists alike, 409 exists otherwise.
func (c *Client) Create(ctx context.Context, name string, req streamapi.DSCreate) (streamapi.DSAnswer, error) {
	return c.ds(ctx, name, http.MethodPut, streamapi.RouteDS, req)
}

// Append is POST /ds: one append (AppendBatch sends many in one request).
func (c *Client) Append(ctx context.Context, name string, a streamapi.DSAppend) (streamapi.DSAnswer, error) {
	return c.ds(ctx, name, http.MethodPost, streamapi.RouteDS, a)
}

// Delete is DELETE /ds: 204 deleted (Meta.Fork names the source to release), 404, 410.
func (c *Client) Delete(ctx context.Context, name string) (streamapi.DSAnswer, error) {
	return c.ds(ctx, name, http.MethodDelete, streamapi.RouteDS, nil)
}

// Ref adds or removes a fork of the stream; a 200 answer's result is the DSRefResult.
func (c *Client) Ref(ctx context.Context, name string, ref streamapi.DSRef) (streamapi.DSRefResult, streamapi.DSAnswer, error) {
	var body []byte
	body, _ = json.Marshal(ref)
	st, data, err := c.do(ctx, name, http.MethodPost, streamapi.RouteDSRef, "application/json", body)
	if err != nil {
		return streamapi.DSRefResult{}, streamapi.DSAnswer{}, err
	}
	if st != http.StatusOK {
		a, err := dsAnswer(st, data)
		return streamapi.DSRefResult{}, a, err
	}
	var rr streamapi.DSRefResult
	if err := decode(data, &rr); err != nil {
		return rr, streamapi.DSAnswer{Status: st}, err
	}
	return rr, streamapi.DSAnswer{Status: st}, nil
}

// AppendBatch is POST /ds/batch: the appends (1 to streamapi.MaxBatch) in order in one
// object event, one answer each. An error is the batch's as a whole: a *streamapi.Error
// with the object's status (404 CodeNotFound: a host from before batches) or none.
func (c *Client) AppendBatch(ctx context.Context, name string, as []streamapi.DSAppend) ([]streamapi.DSAnswer, error) {
	body, err := streamapi.EncodeDSBatch(as)
	if err != nil {
		return nil, &streamapi.Error{Code: streamapi.CodeInternal, Message: err.Error(), Err: err}
	}
	var out []streamapi.DSAnswer
	if err := c.callRaw(ctx, name, http.MethodPost, streamapi.RouteDSBatch, streamapi.DSBatchContentType, body, &out); err != nil {
		return nil, err
	}
	if len(out) != len(as) {
		return nil, &streamapi.Error{Status: http.StatusBadGateway, Code: streamapi.CodeInternal, Message: fmt.Sprintf("stream object answered %d of %d appends", len(out), len(as))}
	}
	return out, nil
}

// Read is GET /ds/read: the records from q.From (a 200), else nil and the answer (404 no
// such stream, 410 deleted or before the retained data).
func (c *Client) Read(ctx context.Context, name string, q streamapi.DSReadQuery) (*streamapi.DSRead, streamapi.DSAnswer, error) {
	st, data, err := c.do(ctx, name, http.MethodGet, streamapi.RouteDSRead+"?"+q.Encode(), "application/json", nil)
	if err != nil {
		return nil, streamapi.DSAnswer{}, err
	}
	if st != http.StatusOK {
		a, err := dsAnswer(st, data)
		return nil, a, err
	}
	var rd streamapi.DSRead
	if err := decode(data, &rd); err != nil {
		return nil, streamapi.DSAnswer{Status: st}, err
	}
	return &rd, streamapi.DSAnswer{Status: st}, nil
}
