package blob

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// index is the in-memory view of the metadata KV, kept current by the watch. Memory per
// object: an entry of about 150 bytes plus the key (twice: map and sorted slice share the
// string), the ETag and the blob ids, so roughly 250 bytes for a 40-byte key, 250 MB per
// million keys. Inserting a key moves the tail of the sorted slice (a memmove of 16 bytes
// per following key: cheap below a few million keys per bucket).
type index struct {
	mu       sync.RWMutex
	applied  uint64        // last KV revision applied
	notify   chan struct{} // closed and replaced on every apply
	closed   bool
	buckets  map[string]*bucketIdx
	uploads  map[string]*uploadEntry   // by upload id
	parts    map[string]map[int]string // upload id → part number → blob id
	refs     map[string]int            // blob id → records referring to it
	partRevs map[string]uint64         // part KV key → revision
	dropped  map[string]time.Time      // blob id → when its last reference went
}

type bucketIdx struct {
	name    string
	created time.Time
	keys    []string
	objs    map[string]*entry
}

type entry struct {
	size     int64
	etag     string
	modified time.Time
	blobs    []string
}

type uploadEntry struct {
	bucket, key, id string
	initiated       time.Time
}

func newIndex() *index {
	return &index{
		notify:   make(chan struct{}),
		buckets:  map[string]*bucketIdx{},
		uploads:  map[string]*uploadEntry{},
		parts:    map[string]map[int]string{},
		refs:     map[string]int{},
		partRevs: map[string]uint64{},
		dropped:  map[string]time.Time{},
	}
}

func (ix *index) close() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.closed {
		ix.closed = true
		close(ix.notify)
	}
}

// waitApplied blocks until the watch has applied revision rev, so that a caller's own
// write is visible to its next list (read-your-writes on this node).
func (ix *index) waitApplied(ctx context.Context, rev uint64) error {
	for {
		ix.mu.RLock()
		done, ch, closed := ix.applied >= rev, ix.notify, ix.closed
		ix.mu.RUnlock()
		if done {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (ix *index) ref(blobs []string, d int) {
	for _, b := range blobs {
		if n := ix.refs[b] + d; n > 0 {
			ix.refs[b] = n
			delete(ix.dropped, b)
		} else {
			delete(ix.refs, b)
			ix.dropped[b] = time.Now()
		}
	}
}

func (ix *index) apply(e jetstream.KeyValueEntry) {
	ix.mu.Lock()
	defer func() {
		if e.Revision() > ix.applied {
			ix.applied = e.Revision()
		}
		if !ix.closed {
			close(ix.notify)
			ix.notify = make(chan struct{})
		}
		ix.mu.Unlock()
	}()
	key := e.Key()
	del := e.Operation() != jetstream.KeyValuePut
	parts := strings.SplitN(key, ".", 3)
	switch parts[0] {
	case "b":
		if len(parts) != 2 {
			return
		}
		name := tokenBucket(parts[1])
		if del {
			if b := ix.buckets[name]; b != nil {
				for _, en := range b.objs {
					ix.ref(en.blobs, -1)
				}
				delete(ix.buckets, name)
			}
			return
		}
		var rec bucketRecord
		_ = json.Unmarshal(e.Value(), &rec)
		if b := ix.buckets[name]; b != nil {
			b.created = rec.Created
			return
		}
		ix.buckets[name] = &bucketIdx{name: name, created: rec.Created, objs: map[string]*entry{}}
	case "o":
		if len(parts) != 3 {
			return
		}
		name := tokenBucket(parts[1])
		kb, err := b64.DecodeString(parts[2])
		if err != nil {
			return
		}
		k := string(kb)
		b := ix.buckets[name]
		if b == nil {
			// Object of a bucket not (yet) known: keep it so that refs stay right.
			b = &bucketIdx{name: name, objs: map[string]*entry{}}
			ix.buckets[name] = b
		}
		old := b.objs[k]
		if old != nil {
			ix.ref(old.blobs, -1)
		}
		if del {
			if old != nil {
				delete(b.objs, k)
				i := sort.SearchStrings(b.keys, k)
				if i < len(b.keys) && b.keys[i] == k {
					b.keys = append(b.keys[:i], b.keys[i+1:]...)
				}
			}
			return
		}
		var rec objectRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return
		}
		en := &entry{size: rec.Size, etag: rec.ETag, modified: rec.Modified, blobs: rec.blobs()}
		ix.ref(en.blobs, 1)
		b.objs[k] = en
		if old == nil {
			i := sort.SearchStrings(b.keys, k)
			b.keys = append(b.keys, "")
			copy(b.keys[i+1:], b.keys[i:])
			b.keys[i] = k
		}
	case "u":
		if len(parts) != 3 {
			return
		}
		id := parts[2]
		if del {
			delete(ix.uploads, id)
			return
		}
		var rec uploadRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return
		}
		ix.uploads[id] = &uploadEntry{bucket: tokenBucket(parts[1]), key: rec.Key, id: id, initiated: rec.Initiated}
	case "p":
		if len(parts) != 3 {
			return
		}
		id := parts[1]
		var n int
		if err := json.Unmarshal([]byte(parts[2]), &n); err != nil {
			return
		}
		m := ix.parts[id]
		if old, ok := m[n]; ok {
			ix.ref([]string{old}, -1)
			delete(m, n)
			delete(ix.partRevs, key)
		}
		if del {
			if len(m) == 0 {
				delete(ix.parts, id)
			}
			return
		}
		var rec partRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return
		}
		if m == nil {
			m = map[int]string{}
			ix.parts[id] = m
		}
		m[n] = rec.Seg.Blob
		ix.partRevs[key] = e.Revision()
		ix.ref([]string{rec.Seg.Blob}, 1)
	}
}
