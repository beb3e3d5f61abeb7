package fileapi

import (
	"context"
	"errors"
	"io"

	"github.com/holdfast/holdfast/functions"
	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httprange"
)

type bucket struct {
	store *blob.Store
	name  string
}

// NewBucket returns the functions.Bucket binding of one bucket.
func NewBucket(store *blob.Store, name string) functions.Bucket {
	return &bucket{store: store, name: name}
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, blob.ErrNoSuchKey):
		return functions.ErrNoSuchObject
	case errors.Is(err, blob.ErrPrecondition):
		return functions.ErrPreconditionFailed
	}
	return err
}

func fnInfo(i *blob.ObjectInfo) functions.ObjectInfo {
	return functions.ObjectInfo{Key: i.Key, Size: i.Size, ETag: `"` + i.ETag + `"`, Uploaded: i.Modified,
		ContentType: i.ContentType, Metadata: i.Meta}
}

func (b *bucket) Head(ctx context.Context, key string) (*functions.ObjectInfo, error) {
	i, err := b.store.HeadObject(ctx, b.name, key)
	if err != nil {
		return nil, mapErr(err)
	}
	fi := fnInfo(i)
	return &fi, nil
}

func (b *bucket) Get(ctx context.Context, key string, opts *functions.GetOptions) (*functions.Object, error) {
	obj, err := b.store.OpenObject(ctx, b.name, key)
	if err != nil {
		return nil, mapErr(err)
	}
	size := obj.Info.Size
	off, n := int64(0), size
	if opts != nil {
		if opts.IfMatch != "" && !httprange.ETagMatch(opts.IfMatch, obj.Info.ETag) {
			return nil, functions.ErrPreconditionFailed
		}
		if opts.IfNoneMatch != "" && httprange.ETagMatch(opts.IfNoneMatch, obj.Info.ETag) {
			return nil, functions.ErrPreconditionFailed
		}
		switch {
		case opts.Suffix > 0:
			n = min(opts.Suffix, size)
			off = size - n
		case opts.Ranged:
			off = min(max(opts.Offset, 0), size)
			n = size - off
			if opts.Length >= 0 && opts.Length < n {
				n = opts.Length
			}
		}
	}
	r, err := obj.NewReader(ctx, off, n)
	if err != nil {
		return nil, err
	}
	return &functions.Object{ObjectInfo: fnInfo(&obj.Info), Body: r, Offset: off, Length: n}, nil
}

func (b *bucket) Put(ctx context.Context, key string, body io.Reader, opts *functions.PutOptions) (*functions.ObjectInfo, error) {
	var po blob.PutOptions
	size := int64(-1)
	if opts != nil {
		po.ContentType, po.Meta, po.IfMatch = opts.ContentType, opts.Metadata, opts.IfMatch
		if opts.Size >= 0 {
			size = opts.Size
		}
	}
	if po.ContentType == "" {
		po.ContentType = "application/octet-stream"
	}
	i, err := b.store.PutObject(ctx, b.name, key, body, size, po)
	if err != nil {
		return nil, mapErr(err)
	}
	fi := fnInfo(i)
	return &fi, nil
}

func (b *bucket) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := b.store.DeleteObject(ctx, b.name, k, ""); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

func (b *bucket) List(ctx context.Context, opts *functions.ListOptions) (*functions.ListResult, error) {
	lo := blob.ListOptions{Limit: 1000}
	if opts != nil {
		lo.Prefix, lo.Delimiter, lo.StartAfter = opts.Prefix, opts.Delimiter, opts.StartAfter
		if opts.Limit > 0 && opts.Limit < 1000 {
			lo.Limit = opts.Limit
		}
		if opts.Cursor != "" {
			next, err := decodeCursor(opts.Cursor)
			if err != nil {
				return nil, errors.New("fileapi: bad cursor")
			}
			lo.Continue = next
		}
	}
	res, err := b.store.List(ctx, b.name, lo)
	if err != nil {
		return nil, mapErr(err)
	}
	out := &functions.ListResult{DelimitedPrefixes: res.CommonPrefixes, Truncated: res.Truncated}
	for i := range res.Objects {
		out.Objects = append(out.Objects, fnInfo(&res.Objects[i]))
	}
	if res.Truncated {
		out.Cursor = encodeCursor(res.Next)
	}
	return out, nil
}
