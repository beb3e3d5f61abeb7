package blob

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// GCStats reports one collection.
type GCStats struct {
	Blobs       int // blobs found in the chunk stream
	Purged      int // blobs purged
	Candidates  int // unreferenced blobs waiting for their grace period
	PartsFreed  int // part records of vanished uploads removed
	UploadsGone int // multipart uploads expired
}

func (s *Store) gcLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if st, err := s.GC(ctx); err != nil {
				s.opts.Logger.Warn("blob: gc", "err", err)
			} else if st.Purged > 0 {
				s.opts.Logger.Debug("blob: gc", "purged", st.Purged, "blobs", st.Blobs)
			}
		}
	}
}

// GC runs one mark-and-sweep collection. A blob is purged when it is older than
// UploadTimeout (so no upload can still be writing or committing it), no record refers to
// it, and it has been seen unreferenced for at least GCGrace by this process. Several
// processes may collect at once: they apply the same rule.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st GCStats
	now := time.Now()

	// Expire abandoned multipart uploads; drop part records whose upload is gone.
	s.idx.mu.RLock()
	var expired []*uploadEntry
	for _, u := range s.idx.uploads {
		if now.Sub(u.initiated) > s.opts.MultipartExpiry {
			expired = append(expired, u)
		}
	}
	var orphanParts []string
	for id := range s.idx.parts {
		if _, ok := s.idx.uploads[id]; ok {
			continue
		}
		if t, ok := blobTime(id); ok && now.Sub(t) < s.opts.UploadTimeout+s.opts.GCGrace {
			// The upload may have just been created elsewhere; look again later... unless
			// it is older than any upload could be, it may be one being completed.
			continue
		}
		orphanParts = append(orphanParts, id)
	}
	s.idx.mu.RUnlock()
	for _, u := range expired {
		s.dropUpload(ctx, u.bucket, u.id)
		st.UploadsGone++
	}
	for _, id := range orphanParts {
		s.dropParts(ctx, id)
		st.PartsFreed++
	}

	// Delete markers of deleted keys would otherwise stay in the KV for ever.
	if err := s.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(s.opts.GCGrace)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.opts.Logger.Debug("blob: purge delete markers", "err", err)
	}

	info, err := s.chunks.Info(ctx, jetstream.WithSubjectFilter(s.subj+">"))
	if err != nil {
		return st, err
	}
	seen := make(map[string]bool, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		id := strings.TrimPrefix(subj, s.subj)
		seen[id] = true
		st.Blobs++
		if s.referenced(id) {
			delete(s.candidates, id)
			continue
		}
		if t, ok := s.droppedAt(id); ok {
			// It was referenced and no longer is: only the grace period protects it.
			if now.Sub(t) < s.opts.GCGrace || s.referenced(id) {
				st.Candidates++
				continue
			}
			if err := s.chunks.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
				return st, err
			}
			s.forgetDropped(id)
			st.Purged++
			continue
		}
		if t, ok := blobTime(id); ok && now.Sub(t) < s.opts.UploadTimeout+s.opts.GCGrace {
			continue // may still be written or committed
		}
		first, ok := s.candidates[id]
		if !ok {
			s.candidates[id] = now
			st.Candidates++
			continue
		}
		if now.Sub(first) < s.opts.GCGrace || s.referenced(id) {
			st.Candidates++
			continue
		}
		if err := s.chunks.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return st, err
		}
		delete(s.candidates, id)
		st.Purged++
	}
	for id := range s.candidates {
		if !seen[id] {
			delete(s.candidates, id)
		}
	}
	s.idx.mu.Lock()
	for id := range s.idx.dropped {
		if !seen[id] && s.idx.refs[id] == 0 {
			delete(s.idx.dropped, id)
		}
	}
	s.idx.mu.Unlock()
	return st, nil
}

func (s *Store) droppedAt(id string) (time.Time, bool) {
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	t, ok := s.idx.dropped[id]
	return t, ok
}

func (s *Store) forgetDropped(id string) {
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	if s.idx.refs[id] == 0 {
		delete(s.idx.dropped, id)
	}
}

func (s *Store) referenced(id string) bool {
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	return s.idx.refs[id] > 0
}

// BlobCount returns the number of blobs in the chunk stream and the bytes they hold (for
// tests and metrics).
func (s *Store) BlobCount(ctx context.Context) (blobs int, bytes uint64, err error) {
	info, err := s.chunks.Info(ctx, jetstream.WithSubjectFilter(s.subj+">"))
	if err != nil {
		return 0, 0, err
	}
	return len(info.State.Subjects), info.State.Bytes, nil
}
