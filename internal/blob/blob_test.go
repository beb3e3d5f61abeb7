package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s := natstest.Server(t)
	nc := natstest.Conn(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 64 << 10
	}
	if opts.GCInterval == 0 {
		opts.GCInterval = -1
	}
	st, err := Open(context.Background(), js, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.EnsureBucket(context.Background(), "files"); err != nil {
		t.Fatal(err)
	}
	return st
}

func randBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func readAll(t testing.TB, s *Store, bucket, key string, off, n int64) []byte {
	t.Helper()
	o, err := s.OpenObject(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := o.NewReader(context.Background(), off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPutGetRanges(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	data := randBytes(1<<20+12345, 1)
	info, err := s.PutObject(ctx, "files", "a/b.bin", bytes.NewReader(data), int64(len(data)), PutOptions{ContentType: "application/x-test", Meta: map[string]string{"color": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if info.ETag != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) {
		t.Fatalf("info %+v", info)
	}
	h, err := s.HeadObject(ctx, "files", "a/b.bin")
	if err != nil || h.ContentType != "application/x-test" || h.Meta["color"] != "blue" {
		t.Fatalf("head %+v %v", h, err)
	}
	if got := readAll(t, s, "files", "a/b.bin", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("whole read differs")
	}
	for _, r := range [][2]int64{{0, 1}, {1, 100}, {65535, 2}, {65536, 65536}, {100000, 300000}, {int64(len(data)) - 1, 1}, {int64(len(data)) - 70000, -1}, {int64(len(data)), -1}} {
		end := int64(len(data))
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		if got := readAll(t, s, "files", "a/b.bin", r[0], r[1]); !bytes.Equal(got, data[r[0]:end]) {
			t.Fatalf("range %v differs", r)
		}
	}
	// Unknown size (streamed up to EOF) and empty objects.
	if _, err := s.PutObject(ctx, "files", "stream", io.MultiReader(bytes.NewReader(data[:70000])), -1, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "files", "stream", 0, -1); !bytes.Equal(got, data[:70000]) {
		t.Fatal("stream differs")
	}
	if info, err := s.PutObject(ctx, "files", "empty", bytes.NewReader(nil), 0, PutOptions{}); err != nil || info.ETag != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Fatal(info, err)
	}
	if got := readAll(t, s, "files", "empty", 0, -1); len(got) != 0 {
		t.Fatal("empty not empty")
	}
}

func TestErrors(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	if _, err := s.PutObject(ctx, "nope", "k", bytes.NewReader(nil), 0, PutOptions{}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatal(err)
	}
	if _, err := s.HeadObject(ctx, "files", "missing"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatal(err)
	}
	for _, k := range []string{"", "../x", "a/../b", "a/./b", string(make([]byte, 1025)), "bad\xff"} {
		if _, err := s.PutObject(ctx, "files", k, bytes.NewReader(nil), 0, PutOptions{}); !errors.Is(err, ErrBadKey) {
			t.Fatalf("%q: %v", k, err)
		}
	}
	// Truncated and oversized bodies store nothing.
	if _, err := s.PutObject(ctx, "files", "short", bytes.NewReader(make([]byte, 10)), 20, PutOptions{}); !errors.Is(err, ErrIncompleteBody) {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, "files", "long", bytes.NewReader(make([]byte, 30)), 20, PutOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	bad := errors.New("checksum mismatch")
	if _, err := s.PutObject(ctx, "files", "rejected", bytes.NewReader(make([]byte, 100)), 100, PutOptions{BeforeCommit: func(*ObjectInfo) error { return bad }}); !errors.Is(err, bad) {
		t.Fatal(err)
	}
	for _, k := range []string{"short", "long", "rejected"} {
		if _, err := s.HeadObject(ctx, "files", k); !errors.Is(err, ErrNoSuchKey) {
			t.Fatalf("%s stored: %v", k, err)
		}
	}
	if n, _, _ := s.BlobCount(ctx); n != 0 {
		t.Fatalf("%d blobs left by failed writes", n)
	}
	// Conditionals.
	i1, err := s.PutObject(ctx, "files", "c", bytes.NewReader([]byte("1")), 1, PutOptions{IfNoneMatch: "*"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, "files", "c", bytes.NewReader([]byte("2")), 1, PutOptions{IfNoneMatch: "*"}); !errors.Is(err, ErrPrecondition) {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, "files", "c", bytes.NewReader([]byte("2")), 1, PutOptions{IfMatch: "nope"}); !errors.Is(err, ErrPrecondition) {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, "files", "c", bytes.NewReader([]byte("2")), 1, PutOptions{IfMatch: `"` + i1.ETag + `"`}); err != nil {
		t.Fatal(err)
	}
	// Buckets.
	if err := s.CreateBucket(ctx, "files"); !errors.Is(err, ErrBucketExists) {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "Bad_Name"); !errors.Is(err, ErrBadBucketName) {
		t.Fatal(err)
	}
	if err := s.DeleteBucket(ctx, "files"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "my.other-bucket"); err != nil {
		t.Fatal(err)
	}
	if bs := s.ListBuckets(ctx); len(bs) != 2 || bs[0].Name != "files" || bs[1].Name != "my.other-bucket" {
		t.Fatal(bs)
	}
	if err := s.DeleteBucket(ctx, "my.other-bucket"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeadBucket(ctx, "my.other-bucket"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	keys := []string{"a", "b/1", "b/2", "b/3/x", "c", "d/1", "d/2", "e", "z/z/z", "é"}
	for _, k := range keys {
		if _, err := s.PutObject(ctx, "files", k, bytes.NewReader([]byte(k)), int64(len(k)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(o ListOptions) (objs, cps []string, pages int) {
		for {
			r, err := s.List(ctx, "files", o)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, ob := range r.Objects {
				objs = append(objs, ob.Key)
			}
			cps = append(cps, r.CommonPrefixes...)
			if !r.Truncated {
				return
			}
			o.Continue = r.Next
		}
	}
	objs, cps, pages := collect(ListOptions{Limit: 3})
	if fmt.Sprint(objs) != fmt.Sprint(keys) || len(cps) != 0 || pages != 4 {
		t.Fatal(objs, cps, pages)
	}
	objs, cps, _ = collect(ListOptions{Delimiter: "/", Limit: 2})
	if fmt.Sprint(objs) != "[a c e é]" || fmt.Sprint(cps) != "[b/ d/ z/]" {
		t.Fatal(objs, cps)
	}
	objs, cps, _ = collect(ListOptions{Prefix: "b/", Delimiter: "/", Limit: 1})
	if fmt.Sprint(objs) != "[b/1 b/2]" || fmt.Sprint(cps) != "[b/3/]" {
		t.Fatal(objs, cps)
	}
	objs, _, _ = collect(ListOptions{StartAfter: "c", Limit: 100})
	if fmt.Sprint(objs) != "[d/1 d/2 e z/z/z é]" {
		t.Fatal(objs)
	}
	if err := s.DeleteObject(ctx, "files", "d/1", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteObject(ctx, "files", "never", ""); err != nil {
		t.Fatal(err)
	}
	objs, _, _ = collect(ListOptions{Prefix: "d"})
	if fmt.Sprint(objs) != "[d/2]" {
		t.Fatal(objs)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOverwriteGCAndReaderGrace(t *testing.T) {
	s := newStore(t, Options{GCGrace: 200 * time.Millisecond, UploadTimeout: time.Second})
	ctx := context.Background()
	v1 := randBytes(300000, 1)
	v2 := randBytes(200000, 2)
	if _, err := s.PutObject(ctx, "files", "k", bytes.NewReader(v1), -1, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	o, err := s.OpenObject(ctx, "files", "k")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := o.NewReader(ctx, 0, -1)
	head := make([]byte, 1000)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, "files", "k", bytes.NewReader(v2), -1, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// Within the grace period the old reader finishes the old version.
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), v1) {
		t.Fatalf("old reader: %v", err)
	}
	// A reader opened on the old version after collection gets a clear error.
	waitFor(t, "old blob collected", func() bool {
		if _, err := s.GC(ctx); err != nil {
			t.Fatal(err)
		}
		n, _, _ := s.BlobCount(ctx)
		return n == 1
	})
	r2, _ := o.NewReader(ctx, 0, -1)
	if _, err := io.ReadAll(r2); !errors.Is(err, ErrObjectChanged) {
		t.Fatalf("stale reader: %v", err)
	}
	if got := readAll(t, s, "files", "k", 0, -1); !bytes.Equal(got, v2) {
		t.Fatal("v2 differs")
	}
	// Delete frees the rest.
	if err := s.DeleteObject(ctx, "files", "k", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted blob collected", func() bool {
		s.GC(ctx)
		n, _, _ := s.BlobCount(ctx)
		return n == 0
	})
}

func TestCrashedUploadCollected(t *testing.T) {
	s := newStore(t, Options{GCGrace: 100 * time.Millisecond, UploadTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	// A blob written with no record pointing at it: what a crash mid-upload leaves.
	if _, err := s.writeBlob(ctx, bytes.NewReader(randBytes(100000, 3)), -1); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.BlobCount(ctx); n != 1 {
		t.Fatal(n)
	}
	waitFor(t, "orphan collected", func() bool {
		s.GC(ctx)
		n, _, _ := s.BlobCount(ctx)
		return n == 0
	})
}

func TestConcurrentWritersOneKey(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	const writers = 6
	datas := make([][]byte, writers)
	var wg sync.WaitGroup
	for i := range writers {
		datas[i] = randBytes(150000+i, int64(i+10))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.PutObject(ctx, "files", "same", bytes.NewReader(datas[i]), -1, PutOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := readAll(t, s, "files", "same", 0, -1)
	ok := false
	for _, d := range datas {
		ok = ok || bytes.Equal(got, d)
	}
	if !ok {
		t.Fatal("result is not one of the written objects")
	}
	r, _ := s.List(ctx, "files", ListOptions{})
	if len(r.Objects) != 1 {
		t.Fatal(r.Objects)
	}
	s.idx.mu.RLock()
	refs := len(s.idx.refs)
	s.idx.mu.RUnlock()
	if refs != 1 {
		t.Fatalf("%d referenced blobs", refs)
	}
}

func TestMultipartAndCopy(t *testing.T) {
	s := newStore(t, Options{GCGrace: 100 * time.Millisecond, UploadTimeout: time.Second})
	ctx := context.Background()
	id, err := s.CreateMultipart(ctx, "files", "big", PutOptions{ContentType: "text/x", Meta: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	p1 := randBytes(MinPartSize, 1)
	p2 := randBytes(MinPartSize+7, 2)
	p3 := randBytes(1000, 3)
	var wg sync.WaitGroup
	infos := make([]*PartInfo, 4)
	for i, p := range [][]byte{p3, p1, p2} {
		n := []int{3, 1, 2}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			pi, err := s.UploadPart(ctx, "files", "big", id, n, bytes.NewReader(p), int64(len(p)), nil)
			if err != nil {
				t.Error(err)
				return
			}
			infos[n] = pi
		}()
	}
	wg.Wait()
	// Re-upload part 3: the first version becomes garbage.
	pi3, err := s.UploadPart(ctx, "files", "big", id, 3, bytes.NewReader(p3), int64(len(p3)), nil)
	if err != nil {
		t.Fatal(err)
	}
	infos[3] = pi3
	if ups, _ := s.ListUploads(ctx, "files", ""); len(ups) != 1 || ups[0].ID != id {
		t.Fatal(ups)
	}
	_, parts, err := s.ListParts(ctx, "files", "big", id)
	if err != nil || len(parts) != 3 || parts[0].Number != 1 || parts[2].Size != 1000 {
		t.Fatal(parts, err)
	}
	if _, err := s.CompleteMultipart(ctx, "files", "big", id, []CompletePart{{2, infos[2].ETag}, {1, infos[1].ETag}}, PutOptions{}); !errors.Is(err, ErrInvalidPartOrder) {
		t.Fatal(err)
	}
	if _, err := s.CompleteMultipart(ctx, "files", "big", id, []CompletePart{{1, infos[1].ETag}, {3, infos[3].ETag}, {2, infos[2].ETag}}, PutOptions{}); !errors.Is(err, ErrInvalidPartOrder) {
		t.Fatal(err)
	}
	if _, err := s.CompleteMultipart(ctx, "files", "big", id, []CompletePart{{1, "bad"}}, PutOptions{}); !errors.Is(err, ErrInvalidPart) {
		t.Fatal(err)
	}
	if _, err := s.CompleteMultipart(ctx, "files", "big", id, []CompletePart{{3, infos[3].ETag}, {4, infos[3].ETag}}, PutOptions{}); err == nil {
		t.Fatal("completed with a missing part")
	}
	info, err := s.CompleteMultipart(ctx, "files", "big", id, []CompletePart{{1, infos[1].ETag}, {2, `"` + infos[2].ETag + `"`}, {3, infos[3].ETag}}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	for _, n := range []int{1, 2, 3} {
		b, _ := hex.DecodeString(infos[n].ETag)
		h.Write(b)
	}
	if want := hex.EncodeToString(h.Sum(nil)) + "-3"; info.ETag != want || info.ContentType != "text/x" {
		t.Fatal(info.ETag, want)
	}
	all := append(append(append([]byte{}, p1...), p2...), p3...)
	if got := readAll(t, s, "files", "big", 0, -1); !bytes.Equal(got, all) {
		t.Fatal("multipart body differs")
	}
	off := int64(MinPartSize - 100)
	if got := readAll(t, s, "files", "big", off, 300); !bytes.Equal(got, all[off:off+300]) {
		t.Fatal("cross-part range differs")
	}
	if ups, _ := s.ListUploads(ctx, "files", ""); len(ups) != 0 {
		t.Fatal(ups)
	}
	// Copy shares the blobs; deleting the source keeps the copy readable.
	if _, err := s.CopyObject(ctx, "files", "big", "files", "copy", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteObject(ctx, "files", "big", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replaced part collected", func() bool {
		s.GC(ctx)
		n, _, _ := s.BlobCount(ctx)
		return n == 3
	})
	if got := readAll(t, s, "files", "copy", 0, -1); !bytes.Equal(got, all) {
		t.Fatal("copy differs")
	}
	// Abort frees parts.
	id2, _ := s.CreateMultipart(ctx, "files", "aborted", PutOptions{})
	if _, err := s.UploadPart(ctx, "files", "aborted", id2, 1, bytes.NewReader(p3), -1, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AbortMultipart(ctx, "files", "aborted", id2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadPart(ctx, "files", "aborted", id2, 2, bytes.NewReader(p3), -1, nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatal(err)
	}
	waitFor(t, "aborted part collected", func() bool {
		s.GC(ctx)
		n, _, _ := s.BlobCount(ctx)
		return n == 3
	})
}

func TestReopenRebuildsIndex(t *testing.T) {
	srv := natstest.Server(t)
	nc := natstest.Conn(t, srv)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s1, err := Open(ctx, js, Options{GCInterval: -1, ChunkSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	s1.EnsureBucket(ctx, "files")
	for i := range 50 {
		k := fmt.Sprintf("k%03d", i)
		s1.PutObject(ctx, "files", k, bytes.NewReader([]byte(k)), -1, PutOptions{})
	}
	s1.Close()
	s2, err := Open(ctx, js, Options{GCInterval: -1, ChunkSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	r, err := s2.List(ctx, "files", ListOptions{StartAfter: "k047"})
	if err != nil || len(r.Objects) != 2 || r.Objects[0].Key != "k048" {
		t.Fatal(r, err)
	}
}

// TestMaxObjectSize: an object over MaxObjectSize is refused whichever way it is
// written (known length, unknown length, the total of a multipart upload, a copy of an
// object stored under a larger limit) and leaves neither a record nor a chunk.
func TestMaxObjectSize(t *testing.T) {
	const limit = 6 << 20
	st := newStore(t, Options{MaxObjectSize: limit, ChunkSize: 1 << 20})
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), limit+1)
	if _, err := st.PutObject(ctx, "files", "known", bytes.NewReader(big), int64(len(big)), PutOptions{}); !errors.Is(err, ErrObjectTooLarge) {
		t.Fatalf("known length: %v", err)
	}
	if _, err := st.PutObject(ctx, "files", "unknown", io.MultiReader(bytes.NewReader(big)), -1, PutOptions{}); !errors.Is(err, ErrObjectTooLarge) {
		t.Fatalf("unknown length: %v", err)
	}
	if n, _, err := st.BlobCount(ctx); err != nil || n != 0 {
		t.Fatalf("%d blobs left by refused uploads (%v)", n, err)
	}
	if _, err := st.PutObject(ctx, "files", "edge", bytes.NewReader(big[:limit]), -1, PutOptions{}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	id, err := st.CreateMultipart(ctx, "files", "mp", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []CompletePart
	for n, size := range []int{MinPartSize, 2 << 20} {
		p, err := st.UploadPart(ctx, "files", "mp", id, n+1, bytes.NewReader(big[:size]), int64(size), nil)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, CompletePart{Number: p.Number, ETag: p.ETag})
	}
	if _, err := st.CompleteMultipart(ctx, "files", "mp", id, parts, PutOptions{}); !errors.Is(err, ErrObjectTooLarge) {
		t.Fatalf("multipart total: %v", err)
	}
	if err := st.AbortMultipart(ctx, "files", "mp", id); err != nil {
		t.Fatal(err)
	}
	// A store with a lower limit over the same data does not copy a larger object.
	small, err := Open(ctx, st.js, Options{MaxObjectSize: 1 << 20, GCInterval: -1, ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := small.CopyObject(ctx, "files", "edge", "files", "copy", CopyOptions{}); !errors.Is(err, ErrObjectTooLarge) {
		t.Fatalf("copy: %v", err)
	}
	res, _ := st.List(ctx, "files", ListOptions{})
	if len(res.Objects) != 1 || res.Objects[0].Key != "edge" {
		t.Fatalf("objects %v", res.Objects)
	}
}
