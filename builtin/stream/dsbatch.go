package stream

// Group commit of Durable Streams appends: a gateway coalesces the appends to one stream
// that arrive while its previous request to the object is in flight into one POST
// /ds/batch (framed by streamapi.EncodeDSBatch). The object applies them in order in one
// event, each with its own checks (closure, content type, producer, Stream-Seq), so their
// records go to the log as one pipelined batch and the reply leaves once all of them are
// durable. One append's refusal (a 4xx) changes nothing and does not affect the others; a
// failure of the event itself answers the whole request with an error.

import (
	"errors"
	"io"
	"net/http"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// dsBatch is POST /ds/batch: every append in order, in this one event.
func (s *stream) dsBatch(r *http.Request) (int, any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, streamapi.MaxDSBatchBody))
	if err != nil {
		return 0, nil, &streamapi.Error{Status: http.StatusRequestEntityTooLarge, Code: streamapi.CodeTooLarge, Message: "batch: " + err.Error()}
	}
	as, err := streamapi.DecodeDSBatch(b)
	if err != nil {
		return 0, nil, err
	}
	out := make([]streamapi.DSAnswer, len(as))
	for i, a := range as {
		st, res, err := s.dsAppend(a)
		if err != nil {
			var ae *streamapi.Error
			if !errors.As(err, &ae) {
				return 0, nil, err // the event fails
			}
			// A refusal wrote nothing (dsAppend refuses before it appends).
			out[i] = streamapi.DSAnswer{Status: ae.Status, Code: ae.Code, DSResult: streamapi.DSResult{Message: ae.Message}}
			continue
		}
		out[i] = streamapi.DSAnswer{Status: st, DSResult: res}
	}
	return http.StatusOK, out, nil
}
