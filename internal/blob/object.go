package blob

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/httprange"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name    string
	Created time.Time
}

// CreateBucket creates a bucket; ErrBucketExists if it exists.
func (s *Store) CreateBucket(ctx context.Context, name string) error {
	if err := CheckBucketName(name); err != nil {
		return err
	}
	v, _ := json.Marshal(bucketRecord{Created: time.Now().UTC()})
	rev, err := s.kv.Create(ctx, bucketKey(name), v)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrBucketExists
	}
	if err != nil {
		return err
	}
	return s.idx.waitApplied(ctx, rev)
}

// EnsureBucket creates the bucket unless it exists.
func (s *Store) EnsureBucket(ctx context.Context, name string) error {
	err := s.CreateBucket(ctx, name)
	if errors.Is(err, ErrBucketExists) {
		return nil
	}
	return err
}

// HeadBucket returns the bucket or ErrNoSuchBucket.
func (s *Store) HeadBucket(ctx context.Context, name string) (*BucketInfo, error) {
	s.idx.mu.RLock()
	b := s.idx.buckets[name]
	var bi *BucketInfo
	if b != nil && !b.created.IsZero() {
		bi = &BucketInfo{Name: name, Created: b.created}
	}
	s.idx.mu.RUnlock()
	if bi != nil {
		return bi, nil
	}
	// Not known here yet: ask the KV (another node may have just created it).
	if CheckBucketName(name) != nil {
		return nil, ErrNoSuchBucket
	}
	e, err := s.kv.Get(ctx, bucketKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoSuchBucket
	}
	if err != nil {
		return nil, err
	}
	var rec bucketRecord
	_ = json.Unmarshal(e.Value(), &rec)
	_ = s.idx.waitApplied(ctx, e.Revision())
	return &BucketInfo{Name: name, Created: rec.Created}, nil
}

// ListBuckets returns every bucket, sorted by name.
func (s *Store) ListBuckets(ctx context.Context) []BucketInfo {
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	out := make([]BucketInfo, 0, len(s.idx.buckets))
	for _, b := range s.idx.buckets {
		if !b.created.IsZero() {
			out = append(out, BucketInfo{Name: b.name, Created: b.created})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DeleteBucket deletes an empty bucket (no objects, no multipart uploads in progress).
func (s *Store) DeleteBucket(ctx context.Context, name string) error {
	if _, err := s.HeadBucket(ctx, name); err != nil {
		return err
	}
	s.idx.mu.RLock()
	b := s.idx.buckets[name]
	n := 0
	if b != nil {
		n = len(b.keys)
	}
	for _, u := range s.idx.uploads {
		if u.bucket == name {
			n++
		}
	}
	s.idx.mu.RUnlock()
	if n > 0 {
		return ErrBucketNotEmpty
	}
	// Objects written on another node and not yet seen here would be hidden; a keys
	// listing on the KV is authoritative.
	lister, err := s.kv.ListKeysFiltered(ctx, objectPrefix(name)+">", "u."+bucketToken(name)+".>")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return err
	}
	if lister != nil {
		for range lister.Keys() {
			n++
		}
		_ = lister.Stop()
	}
	if n > 0 {
		return ErrBucketNotEmpty
	}
	rev, err := s.delKey(ctx, bucketKey(name), 0)
	if err != nil {
		return err
	}
	return s.idx.waitApplied(ctx, rev)
}

// PutOptions describe an object being written.
type PutOptions struct {
	ContentType string            `json:"ct,omitempty"`
	Headers     map[string]string `json:"h,omitempty"`
	Meta        map[string]string `json:"u,omitempty"`
	Checksums   map[string]string `json:"cs,omitempty"`
	// IfMatch commits only if the current object's ETag (unquoted) is this one.
	IfMatch string `json:"-"`
	// IfNoneMatch "*" commits only if the key does not exist; an ETag list, only if the
	// current object's ETag is not in it.
	IfNoneMatch string `json:"-"`
	// BeforeCommit, if set, is called once the body is stored and before the object is
	// committed, with its size and ETag; an error aborts the write (checksum checks).
	// Checksums set by it on info are stored.
	BeforeCommit func(info *ObjectInfo) error `json:"-"`
}

func (s *Store) checkBucket(ctx context.Context, bucket string) error {
	_, err := s.HeadBucket(ctx, bucket)
	return err
}

// PutObject stores r (size bytes, or up to EOF if size < 0) under key. The body is
// streamed: memory stays at WriteWindow chunks whatever its size.
func (s *Store) PutObject(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (*ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := opts.checkMeta(); err != nil {
		return nil, err
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, err
	}
	w, err := s.writeBlob(ctx, r, size)
	if err != nil {
		return nil, err
	}
	rec := &objectRecord{ObjectInfo: ObjectInfo{
		Key: key, Size: w.seg.Size, ETag: hex.EncodeToString(w.md5), Modified: time.Now().UTC(),
		ContentType: opts.ContentType, Headers: opts.Headers, Meta: opts.Meta, Checksums: opts.Checksums,
	}, Layout: []segment{w.seg}}
	if opts.BeforeCommit != nil {
		if err := opts.BeforeCommit(&rec.ObjectInfo); err != nil {
			s.purgeBlob(w.seg.Blob)
			return nil, err
		}
	}
	if !s.fresh(w.seg.Blob) {
		s.purgeBlob(w.seg.Blob)
		return nil, ErrUploadTooSlow
	}
	info, err := s.commit(ctx, bucket, rec, opts.IfMatch, opts.IfNoneMatch)
	if err != nil {
		s.purgeBlob(w.seg.Blob)
		return nil, err
	}
	return info, nil
}

// commit writes an object record with compare-and-set against the current record.
func (s *Store) commit(ctx context.Context, bucket string, rec *objectRecord, ifMatch, ifNoneMatch string) (*ObjectInfo, error) {
	k := objectKey(bucket, rec.Key)
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	for {
		cur, err := s.kv.Get(ctx, k)
		var rev uint64
		exists := false
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, err
		default:
			exists = true
			rev = cur.Revision()
		}
		if ifNoneMatch != "" && exists {
			var c objectRecord
			if ifNoneMatch == "*" || (json.Unmarshal(cur.Value(), &c) == nil && httprange.ETagMatch(ifNoneMatch, c.ETag)) {
				return nil, ErrPrecondition
			}
		}
		if ifMatch != "" {
			if !exists {
				return nil, ErrNoSuchKey
			}
			var c objectRecord
			if json.Unmarshal(cur.Value(), &c) != nil || !httprange.ETagMatch(ifMatch, c.ETag) {
				return nil, ErrPrecondition
			}
		}
		var nrev uint64
		if exists {
			nrev, err = s.kv.Update(ctx, k, val, rev)
		} else {
			// A previous delete leaves a marker: Update against its revision; Create
			// handles both (it re-creates over a delete marker).
			nrev, err = s.kv.Create(ctx, k, val)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err) {
			continue // lost a race: re-read and decide again
		}
		if err != nil {
			return nil, err
		}
		if err := s.idx.waitApplied(ctx, nrev); err != nil {
			return nil, err
		}
		info := rec.ObjectInfo
		info.Bucket, info.Rev = bucket, nrev
		return &info, nil
	}
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// delKey writes a KV delete marker, conditional on rev when rev > 0, and returns its
// revision.
func (s *Store) delKey(ctx context.Context, key string, rev uint64) (uint64, error) {
	m := nats.NewMsg("$KV." + s.opts.Prefix + "_META." + key)
	m.Header.Set("KV-Operation", "DEL")
	var opts []jetstream.PublishOpt
	if rev > 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(rev))
	}
	ack, err := s.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func (s *Store) getRecord(ctx context.Context, bucket, key string) (*objectRecord, error) {
	if err := CheckKey(key); err != nil {
		return nil, ErrNoSuchKey
	}
	e, err := s.kv.Get(ctx, objectKey(bucket, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if err := s.checkBucket(ctx, bucket); err != nil {
			return nil, err
		}
		return nil, ErrNoSuchKey
	}
	if err != nil {
		return nil, err
	}
	var rec objectRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, err
	}
	rec.Bucket, rec.Rev = bucket, e.Revision()
	return &rec, nil
}

// HeadObject returns an object's description.
func (s *Store) HeadObject(ctx context.Context, bucket, key string) (*ObjectInfo, error) {
	rec, err := s.getRecord(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	return &rec.ObjectInfo, nil
}

// Object is an opened object version: Info plus readers of any range of it.
type Object struct {
	Info ObjectInfo
	s    *Store
	rec  *objectRecord
}

// OpenObject opens the current version of key. Readers made from it keep reading that
// version even if the key is overwritten meanwhile (for at least GCGrace).
func (s *Store) OpenObject(ctx context.Context, bucket, key string) (*Object, error) {
	rec, err := s.getRecord(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	return &Object{Info: rec.ObjectInfo, s: s, rec: rec}, nil
}

// PartRange returns the offset and length of part n (1-based) of a multipart object.
func (o *Object) PartRange(n int) (off, length int64, ok bool) {
	if n < 1 || n > len(o.rec.Layout) {
		return 0, 0, false
	}
	for i := 0; i < n-1; i++ {
		off += o.rec.Layout[i].Size
	}
	return off, o.rec.Layout[n-1].Size, true
}

// PartChecksums returns the checksums recorded for part n of a multipart object.
func (o *Object) PartChecksums(n int) map[string]string {
	if n < 1 || n > len(o.rec.Layout) {
		return nil
	}
	return o.rec.Layout[n-1].Sums
}

// DeleteObject deletes key; deleting a missing key is not an error. ifMatch, when set,
// makes it conditional on the current ETag.
func (s *Store) DeleteObject(ctx context.Context, bucket, key string, ifMatch string) error {
	if err := s.checkBucket(ctx, bucket); err != nil {
		return err
	}
	if CheckKey(key) != nil {
		return nil
	}
	k := objectKey(bucket, key)
	for {
		cur, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if ifMatch != "" {
				return ErrPrecondition
			}
			return nil
		}
		if err != nil {
			return err
		}
		if ifMatch != "" {
			var c objectRecord
			if json.Unmarshal(cur.Value(), &c) != nil || !httprange.ETagMatch(ifMatch, c.ETag) {
				return ErrPrecondition
			}
		}
		rev, err := s.delKey(ctx, k, cur.Revision())
		if isWrongLastSeq(err) {
			continue
		}
		if err != nil {
			return err
		}
		return s.idx.waitApplied(ctx, rev)
	}
}

// CopyOptions describe a copy.
type CopyOptions struct {
	// ReplaceMetadata takes ContentType, Headers and Meta from Put instead of the source.
	ReplaceMetadata bool
	Put             PutOptions
	// Source conditions (x-amz-copy-source-if-*), checked against the source.
	Check func(src *ObjectInfo) error
}

// CopyObject copies an object without copying its bytes: the new record refers to the
// source's blobs, which the collector keeps while any record refers to them.
func (s *Store) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, opts CopyOptions) (*ObjectInfo, error) {
	if err := CheckKey(dstKey); err != nil {
		return nil, err
	}
	if err := opts.Put.checkMeta(); err != nil {
		return nil, err
	}
	src, err := s.getRecord(ctx, srcBucket, srcKey)
	if err != nil {
		return nil, err
	}
	if opts.Check != nil {
		if err := opts.Check(&src.ObjectInfo); err != nil {
			return nil, err
		}
	}
	if src.Size > s.opts.MaxObjectSize {
		return nil, ErrObjectTooLarge // stored under a larger limit than this store's
	}
	if err := s.checkBucket(ctx, dstBucket); err != nil {
		return nil, err
	}
	rec := &objectRecord{ObjectInfo: src.ObjectInfo, Layout: src.Layout}
	rec.Key = dstKey
	rec.Modified = time.Now().UTC()
	if opts.ReplaceMetadata {
		rec.ContentType, rec.Headers, rec.Meta = opts.Put.ContentType, opts.Put.Headers, opts.Put.Meta
	}
	return s.commit(ctx, dstBucket, rec, opts.Put.IfMatch, opts.Put.IfNoneMatch)
}

// ListOptions select a page of keys in lexical (byte) order.
type ListOptions struct {
	Prefix, Delimiter string
	// StartAfter lists keys strictly after it.
	StartAfter string
	// Continue is a ListResult.Next from a previous page; it overrides StartAfter.
	Continue string
	// Limit is the most objects plus common prefixes returned (0 means 1000).
	Limit int
	// WithMetadata fills ContentType, Headers, Meta and Checksums of each object (one
	// metadata read per object of the page).
	WithMetadata bool
}

// ListResult is one page.
type ListResult struct {
	Objects        []ObjectInfo // Key, Size, ETag, Modified only
	CommonPrefixes []string
	Truncated      bool
	// Next continues the listing after this page (opaque; empty if not truncated).
	Next string
	// LastKey is the last key or common prefix returned (S3's NextMarker).
	LastKey string
}

// List returns one page of a bucket's keys, in O(log n + page).
func (s *Store) List(ctx context.Context, bucket string, o ListOptions) (*ListResult, error) {
	res, err := s.list(ctx, bucket, o)
	if err != nil || !o.WithMetadata {
		return res, err
	}
	for i := range res.Objects {
		ob := &res.Objects[i]
		rec, err := s.getRecord(ctx, bucket, ob.Key)
		if errors.Is(err, ErrNoSuchKey) {
			continue // deleted since: keep the summary
		}
		if err != nil {
			return nil, err
		}
		ob.ContentType, ob.Headers, ob.Meta, ob.Checksums = rec.ContentType, rec.Headers, rec.Meta, rec.Checksums
	}
	return res, nil
}

func (s *Store) list(ctx context.Context, bucket string, o ListOptions) (*ListResult, error) {
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, err
	}
	if o.Limit <= 0 {
		o.Limit = 1000
	}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	res := &ListResult{}
	b := s.idx.buckets[bucket]
	if b == nil {
		return res, nil
	}
	keys := b.keys
	after, skipPrefix := o.StartAfter, ""
	if o.Continue != "" {
		if strings.HasPrefix(o.Continue, "\x00") {
			skipPrefix = o.Continue[1:]
			after = skipPrefix
		} else {
			after = o.Continue
		}
	}
	start := o.Prefix
	i := sort.SearchStrings(keys, start)
	if after >= start {
		i = sort.Search(len(keys), func(j int) bool { return keys[j] > after })
	}
	if skipPrefix != "" {
		i = skipPast(keys, i, skipPrefix)
	}
	n := 0
	for i < len(keys) && strings.HasPrefix(keys[i], o.Prefix) {
		if n >= o.Limit {
			res.Truncated = true
			break
		}
		k := keys[i]
		if o.Delimiter != "" {
			if j := strings.Index(k[len(o.Prefix):], o.Delimiter); j >= 0 {
				cp := k[:len(o.Prefix)+j+len(o.Delimiter)]
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				res.LastKey, res.Next = cp, "\x00"+cp
				n++
				i = skipPast(keys, i, cp)
				continue
			}
		}
		e := b.objs[k]
		res.Objects = append(res.Objects, ObjectInfo{Bucket: bucket, Key: k, Size: e.size, ETag: e.etag, Modified: e.modified})
		res.LastKey, res.Next = k, k
		n++
		i++
	}
	if !res.Truncated {
		res.Next = ""
	}
	return res, nil
}

// skipPast returns the first index at or after i whose key does not start with p.
func skipPast(keys []string, i int, p string) int {
	return i + sort.Search(len(keys)-i, func(j int) bool {
		k := keys[i+j]
		return k > p && !strings.HasPrefix(k, p)
	})
}
