package stream

// Forks (PROTOCOL.md section 4.2). A fork does not copy its source's history: its
// configuration records {source, fork offset}, and a read below the fork offset is served
// by the source's own log (the gateway stitches the two, following a chain of forks). The
// fork's own log starts with its create record, which sits at the fork offset in the
// shared offset space: a fork's offsets continue its source's, with no translation for
// clients. A sub-offset fork (a boundary inside one of the source's records) copies only
// that record's inherited prefix into its create record.
//
// The source keeps the names of its forks (its reference count). Deleting a stream that
// has forks soft-deletes it: 410 for clients, data kept for the forks. Deleting the last
// fork of a soft-deleted stream drops it, and the gateway cascades up the chain.
//
//	POST /ds/ref  streamapi.DSRef -> 200 streamapi.DSRefResult | 404 | 410, DSResult

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// sameFork reports whether a create asks for the fork f is.
func sameFork(f, o *streamapi.DSFork) bool {
	if f == nil || o == nil {
		return f == nil && o == nil
	}
	return f.Source == o.Source && f.ReqOffset == o.ReqOffset && f.ReqSub == o.ReqSub
}

func (s *stream) dsRef(ref streamapi.DSRef) (int, any, error) {
	m := s.ds.meta
	if m == nil {
		return http.StatusNotFound, noStream, nil
	}
	if !ref.Remove {
		if m.Deleted {
			return http.StatusGone, deleted, nil
		}
		if !slices.Contains(m.Forks, ref.Fork) {
			m.Forks = append(m.Forks, ref.Fork)
			if err := s.dsPutMeta(); err != nil {
				return 0, nil, err
			}
		}
		return http.StatusOK, streamapi.DSRefResult{Forks: len(m.Forks)}, nil
	}
	if i := slices.Index(m.Forks, ref.Fork); i >= 0 {
		m.Forks = slices.Delete(m.Forks, i, i+1)
		if len(m.Forks) == 0 && m.Deleted {
			var src string
			if m.Fork != nil {
				src = m.Fork.Source
			}
			if err := s.dsDrop(); err != nil {
				return 0, nil, err
			}
			return http.StatusOK, streamapi.DSRefResult{Dropped: true, Source: src}, nil
		}
		if err := s.dsPutMeta(); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, streamapi.DSRefResult{Forks: len(m.Forks)}, nil
}

// dsSoftDelete keeps the stream's data for its forks and hides it from clients.
func (s *stream) dsSoftDelete() error {
	s.ds.meta.Deleted = true
	return s.dsPutMeta()
}

func (s *stream) dsPutMeta() error {
	b, err := json.Marshal(s.ds.meta)
	if err != nil {
		return err
	}
	return s.st.Storage().Put(keyDSMeta, b)
}
