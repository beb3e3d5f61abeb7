package blob

import (
	"context"
	"crypto/md5"
	"errors"
	"hash"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// written is what writing one blob produced.
type written struct {
	seg segment
	md5 []byte
}

type inflight struct {
	idx int
	fut jetstream.PubAckFuture
	buf *[]byte
}

// writeBlob streams r into a new blob, size bytes if size >= 0 (else up to EOF), holding
// at most WriteWindow chunks in memory. On any error the blob's chunks are purged. A blob
// larger than MaxObjectSize is ErrObjectTooLarge: at once when size says so, else when
// the body crosses the limit.
func (s *Store) writeBlob(ctx context.Context, r io.Reader, size int64) (*written, error) {
	if size > s.opts.MaxObjectSize {
		return nil, ErrObjectTooLarge
	}
	id := newBlobID()
	subject := blobSubject(s.subj, id)
	cs := s.opts.ChunkSize
	var (
		h       hash.Hash = md5.New()
		total   int64
		seqs    []uint64
		pending []inflight
	)
	wait := func(p inflight) error {
		select {
		case ack := <-p.fut.Ok():
			s.bufs.Put(p.buf)
			for len(seqs) <= p.idx {
				seqs = append(seqs, 0)
			}
			seqs[p.idx] = ack.Sequence
			return nil
		case err := <-p.fut.Err():
			s.bufs.Put(p.buf)
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fail := func(err error) (*written, error) {
		for _, p := range pending {
			select {
			case <-p.fut.Ok():
			case <-p.fut.Err():
			case <-time.After(5 * time.Second):
			}
		}
		s.purgeBlob(id)
		return nil, err
	}
	for n := 0; ; n++ {
		bp := s.bufs.Get().(*[]byte)
		buf := (*bp)[:cs]
		got, err := io.ReadFull(r, buf)
		last := false
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err, last = nil, true
		}
		if err == nil && size >= 0 && total+int64(got) > size {
			err = ErrTooLarge
		}
		if err == nil && total+int64(got) > s.opts.MaxObjectSize {
			err = ErrObjectTooLarge
		}
		if err == nil && last && size >= 0 && total+int64(got) < size {
			err = ErrIncompleteBody
		}
		if err != nil {
			s.bufs.Put(bp)
			return fail(err)
		}
		if got == 0 {
			s.bufs.Put(bp)
			break
		}
		h.Write(buf[:got])
		total += int64(got)
		fut, perr := s.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: buf[:got]}, jetstream.WithExpectStream(s.opts.Prefix+"_CHUNKS"))
		if perr != nil {
			s.bufs.Put(bp)
			return fail(perr)
		}
		pending = append(pending, inflight{idx: n, fut: fut, buf: bp})
		if len(pending) >= s.opts.WriteWindow {
			p := pending[0]
			pending = pending[1:]
			if err := wait(p); err != nil {
				return fail(err)
			}
		}
		if last {
			break
		}
	}
	for len(pending) > 0 {
		p := pending[0]
		pending = pending[1:]
		if err := wait(p); err != nil {
			return fail(err)
		}
	}
	s.opts.Metrics.BytesWritten.Add(float64(total))
	seg := segment{Blob: id, Size: total, Chunk: cs}
	for _, q := range seqs {
		if l := len(seg.Ext); l > 0 && seg.Ext[l-2]+seg.Ext[l-1] == q {
			seg.Ext[l-1]++
		} else {
			seg.Ext = append(seg.Ext, q, 1)
		}
	}
	return &written{seg: seg, md5: h.Sum(nil)}, nil
}

// purgeBlob removes a blob's chunks now (best effort: the collector catches failures).
func (s *Store) purgeBlob(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.chunks.Purge(ctx, jetstream.WithPurgeSubject(blobSubject(s.subj, id)))
	if err != nil && !errors.Is(err, context.Canceled) {
		s.opts.Logger.Debug("blob: purge", "blob", id, "err", err)
	}
}

// fresh reports whether a blob is young enough to be committed.
func (s *Store) fresh(id string) bool {
	t, ok := blobTime(id)
	return ok && time.Since(t) < s.opts.UploadTimeout
}
