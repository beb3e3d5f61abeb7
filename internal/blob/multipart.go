package blob

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// UploadInfo describes a multipart upload in progress.
type UploadInfo struct {
	Bucket, Key, ID string
	Initiated       time.Time
	Put             PutOptions
}

// PartInfo describes an uploaded part.
type PartInfo struct {
	Number    int
	Size      int64
	ETag      string // unquoted hex MD5
	Modified  time.Time
	Checksums map[string]string
}

// CreateMultipart starts a multipart upload and returns its id.
func (s *Store) CreateMultipart(ctx context.Context, bucket, key string, opts PutOptions) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	if err := opts.checkMeta(); err != nil {
		return "", err
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return "", err
	}
	id := newBlobID()
	v, err := json.Marshal(uploadRecord{Key: key, Initiated: time.Now().UTC(), Put: opts})
	if err != nil {
		return "", err
	}
	rev, err := s.kv.Create(ctx, uploadKey(bucket, id), v)
	if err != nil {
		return "", err
	}
	return id, s.idx.waitApplied(ctx, rev)
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// GetUpload returns an upload in progress, checking that it belongs to bucket/key.
func (s *Store) GetUpload(ctx context.Context, bucket, key, id string) (*UploadInfo, error) {
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, err
	}
	if !validUploadID(id) {
		return nil, ErrNoSuchUpload
	}
	e, err := s.kv.Get(ctx, uploadKey(bucket, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoSuchUpload
	}
	if err != nil {
		return nil, err
	}
	var rec uploadRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, err
	}
	if rec.Key != key {
		return nil, ErrNoSuchUpload
	}
	return &UploadInfo{Bucket: bucket, Key: key, ID: id, Initiated: rec.Initiated, Put: rec.Put}, nil
}

// UploadPart stores part n (1..10000) of an upload. Parts may be uploaded concurrently
// and in any order; re-uploading a part replaces it. before, if set, may reject the part
// once it is stored and before it is recorded (checksum checks) and may set checksums.
func (s *Store) UploadPart(ctx context.Context, bucket, key, id string, n int, r io.Reader, size int64, before func(*PartInfo) error) (*PartInfo, error) {
	if n < 1 || n > MaxParts {
		return nil, ErrInvalidPart
	}
	if _, err := s.GetUpload(ctx, bucket, key, id); err != nil {
		return nil, err
	}
	w, err := s.writeBlob(ctx, r, size)
	if err != nil {
		return nil, err
	}
	pi := &PartInfo{Number: n, Size: w.seg.Size, ETag: hex.EncodeToString(w.md5), Modified: time.Now().UTC()}
	if before != nil {
		if err := before(pi); err != nil {
			s.purgeBlob(w.seg.Blob)
			return nil, err
		}
	}
	if !s.fresh(w.seg.Blob) {
		s.purgeBlob(w.seg.Blob)
		return nil, ErrUploadTooSlow
	}
	v, _ := json.Marshal(partRecord{Number: n, Size: pi.Size, MD5: pi.ETag, Modified: pi.Modified, Checksums: pi.Checksums, Seg: w.seg})
	if _, err := s.kv.Put(ctx, partKey(id, n), v); err != nil {
		s.purgeBlob(w.seg.Blob)
		return nil, err
	}
	// An abort racing with this part: the collector removes part records of uploads that
	// no longer exist.
	return pi, nil
}

func (s *Store) getPart(ctx context.Context, id string, n int) (*partRecord, error) {
	e, err := s.kv.Get(ctx, partKey(id, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrInvalidPart
	}
	if err != nil {
		return nil, err
	}
	var rec partRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// ListParts returns an upload's parts, by part number.
func (s *Store) ListParts(ctx context.Context, bucket, key, id string) (*UploadInfo, []PartInfo, error) {
	up, err := s.GetUpload(ctx, bucket, key, id)
	if err != nil {
		return nil, nil, err
	}
	var nums []int
	lister, err := s.kv.ListKeysFiltered(ctx, partPrefix(id)+"*")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil, err
	}
	if lister != nil {
		for k := range lister.Keys() {
			var n int
			if _, err := fmt.Sscanf(strings.TrimPrefix(k, partPrefix(id)), "%d", &n); err == nil {
				nums = append(nums, n)
			}
		}
		_ = lister.Stop()
	}
	sort.Ints(nums)
	out := make([]PartInfo, 0, len(nums))
	for _, n := range nums {
		p, err := s.getPart(ctx, id, n)
		if errors.Is(err, ErrInvalidPart) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, PartInfo{Number: n, Size: p.Size, ETag: p.MD5, Modified: p.Modified, Checksums: p.Checksums})
	}
	return up, out, nil
}

// CompletePart names a part in a completion request.
type CompletePart struct {
	Number int
	ETag   string
}

// CompleteMultipart assembles the listed parts (ascending numbers, matching ETags, each but
// the last at least MinPartSize) into the object, with S3's multipart ETag. Parts not
// listed are discarded.
func (s *Store) CompleteMultipart(ctx context.Context, bucket, key, id string, parts []CompletePart, cond PutOptions) (*ObjectInfo, error) {
	up, err := s.GetUpload(ctx, bucket, key, id)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, ErrInvalidPart
	}
	rec := &objectRecord{ObjectInfo: ObjectInfo{
		Key: key, Modified: time.Now().UTC(), ContentType: up.Put.ContentType,
		Headers: up.Put.Headers, Meta: up.Put.Meta, Parts: len(parts), Checksums: cond.Checksums,
	}}
	for i, cp := range parts {
		if i > 0 && cp.Number <= parts[i-1].Number {
			return nil, ErrInvalidPartOrder
		}
	}
	h := md5.New()
	for i, cp := range parts {
		p, err := s.getPart(ctx, id, cp.Number)
		if err != nil {
			return nil, err
		}
		if strings.Trim(cp.ETag, `"`) != p.MD5 {
			return nil, ErrInvalidPart
		}
		if i < len(parts)-1 && p.Size < MinPartSize {
			return nil, ErrPartTooSmall
		}
		sum, _ := hex.DecodeString(p.MD5)
		h.Write(sum)
		rec.Size += p.Size
		seg := p.Seg
		seg.Sums = p.Checksums
		rec.Layout = append(rec.Layout, seg)
	}
	if rec.Size > s.opts.MaxObjectSize {
		return nil, ErrObjectTooLarge // the upload stays, for the client to abort or fix
	}
	rec.ETag = fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
	info, err := s.commit(ctx, bucket, rec, cond.IfMatch, cond.IfNoneMatch)
	if err != nil {
		return nil, err
	}
	s.dropUpload(ctx, bucket, id)
	return info, nil
}

// AbortMultipart discards an upload and its parts.
func (s *Store) AbortMultipart(ctx context.Context, bucket, key, id string) error {
	if _, err := s.GetUpload(ctx, bucket, key, id); err != nil {
		return err
	}
	s.dropUpload(ctx, bucket, id)
	return nil
}

// dropUpload deletes an upload record, then its part records. Their blobs, unless an
// object refers to them, are collected after GCGrace; a crash in between leaves part
// records the collector removes.
func (s *Store) dropUpload(ctx context.Context, bucket, id string) {
	rev, err := s.delKey(ctx, uploadKey(bucket, id), 0)
	if err == nil {
		_ = s.idx.waitApplied(ctx, rev)
	}
	s.dropParts(ctx, id)
}

func (s *Store) dropParts(ctx context.Context, id string) {
	lister, err := s.kv.ListKeysFiltered(ctx, partPrefix(id)+"*")
	if err != nil {
		return
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	for _, k := range keys {
		_ = s.kv.Purge(ctx, k)
	}
}

// ListUploads returns the uploads in progress in bucket whose key starts with prefix,
// sorted by key then initiation time.
func (s *Store) ListUploads(ctx context.Context, bucket, prefix string) ([]UploadInfo, error) {
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, err
	}
	s.idx.mu.RLock()
	var out []UploadInfo
	for _, u := range s.idx.uploads {
		if u.bucket == bucket && strings.HasPrefix(u.key, prefix) {
			out = append(out, UploadInfo{Bucket: bucket, Key: u.key, ID: u.id, Initiated: u.initiated})
		}
	}
	s.idx.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
