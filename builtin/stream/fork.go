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
//	POST /ds/ref  DSRef -> 200 DSRefResult | 404 | 410

import (
	"encoding/json"
	"net/http"
	"slices"
)

// DSFork is a fork's origin.
type DSFork struct {
	Source string `json:"source"`
	// Offset is the fork point: offsets below it are the source's.
	Offset uint64 `json:"offset"`
	// ReqOffset and ReqSub are the request's Stream-Fork-Offset and Stream-Fork-Sub-Offset,
	// compared when the fork is created again.
	ReqOffset string `json:"reqOffset,omitempty"`
	ReqSub    uint64 `json:"reqSub,omitempty"`
}

func (f *DSFork) same(o *DSFork) bool {
	if f == nil || o == nil {
		return f == nil && o == nil
	}
	return f.Source == o.Source && f.ReqOffset == o.ReqOffset && f.ReqSub == o.ReqSub
}

// ext turns a log seq into an offset; own is the reverse (for offsets at or above the
// stream's first own offset).
func (m *DSMeta) ext(seq uint64) uint64 {
	if m == nil || m.Fork == nil {
		return seq
	}
	return seq - m.CreateSeq + m.Fork.Offset
}

func (m *DSMeta) own(off uint64) uint64 {
	if m == nil || m.Fork == nil {
		return off
	}
	return off - m.Fork.Offset + m.CreateSeq
}

// DSRef adds or removes a fork of this stream.
type DSRef struct {
	Fork   string `json:"fork"`
	Remove bool   `json:"remove,omitempty"`
}

// DSRefResult answers /ds/ref. Dropped: removing the last fork dropped this soft-deleted
// stream, and Source (when it is itself a fork) is to be released in turn.
type DSRefResult struct {
	Forks   int    `json:"forks"`
	Dropped bool   `json:"dropped,omitempty"`
	Source  string `json:"source,omitempty"`
}

func (s *stream) dsRef(ref DSRef) (int, any, error) {
	m := s.ds.meta
	if m == nil {
		return http.StatusNotFound, DSResult{Message: "no such stream"}, nil
	}
	if !ref.Remove {
		if m.Deleted {
			return http.StatusGone, DSResult{Message: "the stream was deleted"}, nil
		}
		if !slices.Contains(m.Forks, ref.Fork) {
			m.Forks = append(m.Forks, ref.Fork)
			if err := s.dsPutMeta(); err != nil {
				return 0, nil, err
			}
		}
		return http.StatusOK, DSRefResult{Forks: len(m.Forks)}, nil
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
			return http.StatusOK, DSRefResult{Dropped: true, Source: src}, nil
		}
		if err := s.dsPutMeta(); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, DSRefResult{Forks: len(m.Forks)}, nil
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
