package dshttp

// Forks over HTTP (PROTOCOL.md section 4.2; the object side is builtin/stream/fork.go).
// A fork copies no history: reads below its fork point are served by its source's log, and
// dsread stitches the two, following a chain of forks. Only a sub-offset fork copies the
// inherited prefix of the one source record its boundary cuts.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/dsread"
	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/names"
)

// forkPlan is a validated fork creation: the source and the inherited prefix of a record
// cut by a sub-offset.
type forkPlan struct {
	source     string
	prefix     []byte            // binary: the record's first bytes
	prefixJSON []json.RawMessage // JSON mode: the record's first messages
}

// parseForkOffset reads Stream-Fork-Offset: a server-minted offset, "-1" (the start), or
// the reference server's "<16 digits>_<16 digits>" shape (read by its first part, so the
// suite's zero and out-of-range offsets mean what they say).
func parseForkOffset(s string) (uint64, bool) {
	if a, b, ok := strings.Cut(s, "_"); ok {
		if len(a) != streamapi.OffsetWidth || len(b) != streamapi.OffsetWidth || !allDigits(a) || !allDigits(b) {
			return 0, false
		}
		n, err := strconv.ParseUint(a, 10, 64)
		return n, err == nil
	}
	n, now, ok := streamapi.ParseOffset(s)
	return n, ok && !now
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// sourceName reads Stream-Forked-From: the path of a stream on this server.
func sourceName(v string) (string, bool) {
	u, err := url.Parse(v)
	if err != nil {
		return "", false
	}
	name, ok := strings.CutPrefix(u.Path, "/v1/stream/")
	return name, ok && names.ValidateStream(name) == nil
}

// planFork validates a fork's headers against its source and completes c (content type,
// inherited expiry, the fork's origin). It answers the request itself and returns nil on
// a refusal.
func (h *Server) planFork(w http.ResponseWriter, r *http.Request, name string, c *streamapi.DSCreate, ctGiven bool) *forkPlan {
	ctx := r.Context()
	src, ok := sourceName(r.Header.Get("Stream-Forked-From"))
	if !ok {
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "Stream-Forked-From names no stream of this server")
		return nil
	}
	if src == name {
		httperr.Write(w, http.StatusConflict, httperr.CodeConflict, "a stream cannot fork itself")
		return nil
	}
	var sub uint64
	if v := r.Header.Values("Stream-Fork-Sub-Offset"); len(v) > 0 {
		if len(v) > 1 || !allDigits(v[0]) || len(v[0]) > 1 && v[0][0] == '0' {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Sub-Offset wants a non-negative integer")
			return nil
		}
		var err error
		if sub, err = strconv.ParseUint(v[0], 10, 64); err != nil {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Sub-Offset is out of range")
			return nil
		}
	}
	reqOffset := r.Header.Get("Stream-Fork-Offset")
	var at uint64
	if reqOffset != "" {
		if at, ok = parseForkOffset(reqOffset); !ok {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "malformed Stream-Fork-Offset")
			return nil
		}
	} else if sub > 0 {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Sub-Offset needs Stream-Fork-Offset")
		return nil
	}
	st, rd, ans, err := h.reads.Read(ctx, src, streamapi.DSReadQuery{From: 1 << 62})
	if err != nil {
		httperr.WriteCallError(w, err)
		return nil
	}
	switch st {
	case http.StatusOK:
	case http.StatusNotFound:
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "the source stream does not exist")
		return nil
	case http.StatusGone:
		httperr.Write(w, http.StatusConflict, httperr.CodeConflict, "the source stream was deleted")
		return nil
	default:
		writeAnswer(w, ans)
		return nil
	}
	if ctGiven && c.ContentType != streamapi.MediaType(rd.Meta.ContentType) {
		httperr.Write(w, http.StatusConflict, streamapi.CodeContentType, "the content type differs from the source stream's "+rd.Meta.ContentType)
		return nil
	}
	c.ContentType = rd.Meta.ContentType
	if c.TTL == nil && c.ExpiresAt == "" {
		c.TTL, c.ExpiresAt = rd.Meta.TTL, rd.Meta.ExpiresAt
	}
	if reqOffset == "" {
		at = rd.Next
	}
	if at > rd.Next {
		httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Offset is past the source stream's tail")
		return nil
	}
	fk := &forkPlan{source: src}
	if sub > 0 {
		// The boundary is inside the next record with data at or after the offset.
		st, rd, ans, err := h.reads.Read(ctx, src, streamapi.DSReadQuery{From: at, Internal: true})
		if err != nil {
			httperr.WriteCallError(w, err)
			return nil
		}
		if st != http.StatusOK {
			writeAnswer(w, ans)
			return nil
		}
		if len(rd.Msgs) == 0 {
			httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Sub-Offset is past the source's data")
			return nil
		}
		m := rd.Msgs[0]
		if streamapi.IsJSON(rd.Meta.ContentType) {
			msgs := dsread.JSONMessages(m)
			if sub > uint64(len(msgs)) {
				httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Sub-Offset is past the record's messages")
				return nil
			}
			fk.prefixJSON = msgs[:sub]
		} else {
			if sub > uint64(len(m.Data)) {
				httperr.Write(w, http.StatusBadRequest, httperr.CodeBadRequest, "Stream-Fork-Sub-Offset is past the record's bytes")
				return nil
			}
			fk.prefix = m.Data[:sub]
		}
		at = m.Seq
	}
	c.Fork = &streamapi.DSFork{Source: src, Offset: at, ReqOffset: reqOffset, ReqSub: sub}
	return fk
}

// join puts the inherited prefix before the create request's own data.
func (fk *forkPlan) join(ct string, data []byte, batch int) ([]byte, int) {
	if !streamapi.IsJSON(ct) {
		if len(fk.prefix) == 0 {
			return data, batch
		}
		return append(append([]byte{}, fk.prefix...), data...), batch
	}
	if len(fk.prefixJSON) == 0 {
		return data, batch
	}
	msgs := append([]json.RawMessage{}, fk.prefixJSON...)
	if len(data) > 0 {
		msgs = append(msgs, dsread.JSONMessages(streamapi.DSMsg{Data: data, Batch: batch})...)
	}
	if len(msgs) == 1 {
		return msgs[0], 1
	}
	b, _ := json.Marshal(msgs)
	return b, len(msgs)
}

// forkRef records the fork on its source before the fork exists, so that the source
// cannot be dropped under a new fork.
func (h *Server) forkRef(w http.ResponseWriter, r *http.Request, src, fork string) bool {
	_, ans, err := h.sc.Ref(r.Context(), src, streamapi.DSRef{Fork: fork})
	if err != nil {
		httperr.WriteCallError(w, err)
		return false
	}
	switch ans.Status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		httperr.Write(w, http.StatusNotFound, httperr.CodeNotFound, "the source stream does not exist")
	case http.StatusGone:
		httperr.Write(w, http.StatusConflict, httperr.CodeConflict, "the source stream was deleted")
	default:
		writeAnswer(w, ans)
	}
	return false
}

// forkCreated drops the source's reference when the create did not make (or find) a fork
// of that source.
func (h *Server) forkCreated(ctx context.Context, src, fork string, ans streamapi.DSAnswer, err error) {
	if m := ans.Meta; err == nil && m != nil && m.Fork != nil && m.Fork.Source == src {
		return // created, or an existing fork of the same source
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.RequestTimeout)
	defer cancel()
	_, _, _ = h.sc.Ref(ctx, src, streamapi.DSRef{Fork: fork, Remove: true})
}

// delete is DELETE: a stream with forks is soft-deleted by its object; a deleted fork
// releases its source, which drops a soft-deleted source with no fork left, up the chain.
func (h *Server) delete(w http.ResponseWriter, r *http.Request, name string) {
	ans, err := h.sc.Delete(r.Context(), name)
	if err != nil {
		httperr.WriteCallError(w, err)
		return
	}
	if ans.Status != http.StatusNoContent {
		writeAnswer(w, ans)
		return
	}
	if res := ans.DSResult; res.Meta != nil && res.Meta.Fork != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.opts.RequestTimeout)
		defer cancel()
		fork, src := name, res.Meta.Fork.Source
		for range dsread.MaxForkDepth {
			rr, ans, err := h.sc.Ref(ctx, src, streamapi.DSRef{Fork: fork, Remove: true})
			if err != nil || ans.Status != http.StatusOK || !rr.Dropped || rr.Source == "" {
				break
			}
			fork, src = src, rr.Source
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
