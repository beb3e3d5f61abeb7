package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/nats-io/nats.go/jetstream"
)

// chunkRef locates one chunk: its stream sequence, the blob it belongs to, the part of it
// wanted.
type chunkRef struct {
	seq      uint64
	blob     string
	from, to int // byte range within the chunk
	size     int // expected chunk size
}

// plan maps the byte range [off, off+n) of the object to chunk references, lazily.
type plan struct {
	layout []segment
	starts []int64 // offset of each segment
	off    int64
	end    int64
}

func (p *plan) next() (chunkRef, bool) {
	if p.off >= p.end {
		return chunkRef{}, false
	}
	si := sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > p.off }) - 1
	seg := p.layout[si]
	in := p.off - p.starts[si]
	ci := in / int64(seg.Chunk)
	// Map chunk index ci to a stream sequence through the extents.
	var seq uint64
	rem := uint64(ci)
	for j := 0; j+1 < len(seg.Ext); j += 2 {
		if rem < seg.Ext[j+1] {
			seq = seg.Ext[j] + rem
			break
		}
		rem -= seg.Ext[j+1]
	}
	csize := int64(seg.Chunk)
	if last := seg.Size - ci*int64(seg.Chunk); last < csize {
		csize = last
	}
	from := int(in - ci*int64(seg.Chunk))
	to := int(csize)
	if e := p.end - (p.starts[si] + ci*int64(seg.Chunk)); e < int64(to) {
		to = int(e)
	}
	p.off += int64(to - from)
	return chunkRef{seq: seq, blob: seg.Blob, from: from, to: to, size: int(csize)}, true
}

// NewReader returns a reader of length bytes from offset (length < 0: to the end). It
// fetches ReadAhead chunks ahead by direct get: the cost is O(range). If the version is
// garbage collected under it, Read fails with ErrObjectChanged.
func (o *Object) NewReader(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	size := o.Info.Size
	if offset < 0 || offset > size {
		return nil, fmt.Errorf("blob: offset %d outside object of %d bytes", offset, size)
	}
	if length < 0 || offset+length > size {
		length = size - offset
	}
	p := &plan{layout: o.rec.Layout, off: offset, end: offset + length}
	var pos int64
	for _, s := range o.rec.Layout {
		p.starts = append(p.starts, pos)
		pos += s.Size
	}
	if pos != size {
		return nil, fmt.Errorf("blob: corrupt layout of %s/%s", o.Info.Bucket, o.Info.Key)
	}
	// Zero-size segments would confuse the search: drop them.
	var lay []segment
	var st []int64
	for i, s := range p.layout {
		if s.Size > 0 {
			lay = append(lay, s)
			st = append(st, p.starts[i])
		}
	}
	p.layout, p.starts = lay, st
	ctx, cancel := context.WithCancel(ctx)
	return &reader{s: o.s, ctx: ctx, cancel: cancel, plan: p}, nil
}

type fetched struct {
	data []byte
	err  error
}

type reader struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	plan   *plan
	queue  []chan fetched
	cur    []byte
	err    error
}

func (r *reader) fill() {
	for len(r.queue) < r.s.opts.ReadAhead {
		ref, ok := r.plan.next()
		if !ok {
			return
		}
		ch := make(chan fetched, 1)
		r.queue = append(r.queue, ch)
		go func() {
			m, err := r.s.chunks.GetMsg(r.ctx, ref.seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				ch <- fetched{err: ErrObjectChanged}
				return
			}
			if err != nil {
				ch <- fetched{err: err}
				return
			}
			if m.Subject != blobSubject(r.s.subj, ref.blob) || len(m.Data) != ref.size {
				ch <- fetched{err: ErrObjectChanged}
				return
			}
			ch <- fetched{data: m.Data[ref.from:ref.to]}
		}()
	}
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
		if len(r.queue) == 0 {
			r.err = io.EOF
			return 0, io.EOF
		}
		var f fetched
		select {
		case f = <-r.queue[0]:
		case <-r.ctx.Done():
			f.err = r.ctx.Err()
		}
		r.queue = r.queue[1:]
		if f.err != nil {
			r.err = f.err
			r.cancel()
			return 0, f.err
		}
		r.cur = f.data
		r.s.opts.Metrics.BytesRead.Add(float64(len(f.data)))
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo lets io.Copy hand whole chunks to the destination.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.cur) == 0 {
			var one [0]byte
			if _, err := r.Read(one[:]); err != nil && err != io.EOF {
				return total, err
			}
			// Read with an empty buffer returns after filling cur or at EOF.
			if len(r.cur) == 0 {
				if r.err == io.EOF {
					return total, nil
				}
				if r.err != nil {
					return total, r.err
				}
			}
		}
		n, err := w.Write(r.cur)
		total += int64(n)
		r.cur = r.cur[n:]
		if err != nil {
			r.Close()
			return total, err
		}
	}
}

func (r *reader) Close() error {
	r.cancel()
	if r.err == nil {
		r.err = errors.New("blob: reader closed")
	}
	return nil
}
