// Package files benchmarks Holdfast's file storage engine (internal/blob) against the raw
// JetStream object store in the same run: whole-object upload and download MiB/s of a
// 256 MiB object, the latency of 1 MiB range reads at the start and at the end of it, and
// the peak heap while doing so (memory must stay flat whatever the object size).
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/files/
//
// HOLDFAST_BENCH_MIB sets the object size in MiB (256 by default; 5120 for the 5 GiB check).
package files

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func objectSize() int64 {
	if s := os.Getenv("HOLDFAST_BENCH_MIB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return int64(n) << 20
		}
	}
	return 256 << 20
}

// pattern is an endless reader of pseudo-random bytes that holds 1 MiB.
type pattern struct {
	buf []byte
	off int
}

func newPattern() *pattern {
	b := make([]byte, 1<<20)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return &pattern{buf: b}
}

func (p *pattern) Read(b []byte) (int, error) {
	n := copy(b, p.buf[p.off:])
	p.off = (p.off + n) % len(p.buf)
	return n, nil
}

// peakHeap samples the live heap while f runs and reports the peak above the start.
func peakHeap(b *testing.B, f func()) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > base && v-base > peak.Load() {
					peak.Store(v - base)
				}
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

func setup(b *testing.B) (jetstream.JetStream, *blob.Store) {
	s := natstest.Server(b)
	js, err := jetstream.New(natstest.Conn(b, s))
	if err != nil {
		b.Fatal(err)
	}
	st, err := blob.Open(context.Background(), js, blob.Options{GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.EnsureBucket(context.Background(), "bench"); err != nil {
		b.Fatal(err)
	}
	return js, st
}

func BenchmarkBlobUpload(b *testing.B) {
	_, st := setup(b)
	size := objectSize()
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	peakHeap(b, func() {
		for i := 0; i < b.N; i++ {
			if _, err := st.PutObject(ctx, "bench", "obj", io.LimitReader(newPattern(), size), size, blob.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkObjectStoreUpload(b *testing.B) {
	js, _ := setup(b)
	ctx := context.Background()
	os, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "raw", Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	size := objectSize()
	b.SetBytes(size)
	b.ResetTimer()
	peakHeap(b, func() {
		for i := 0; i < b.N; i++ {
			if _, err := os.Put(ctx, jetstream.ObjectMeta{Name: "obj"}, io.LimitReader(newPattern(), size)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBlobDownload(b *testing.B) {
	_, st := setup(b)
	size := objectSize()
	ctx := context.Background()
	if _, err := st.PutObject(ctx, "bench", "obj", io.LimitReader(newPattern(), size), size, blob.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	peakHeap(b, func() {
		for i := 0; i < b.N; i++ {
			o, err := st.OpenObject(ctx, "bench", "obj")
			if err != nil {
				b.Fatal(err)
			}
			r, _ := o.NewReader(ctx, 0, -1)
			if n, err := io.Copy(io.Discard, r); err != nil || n != size {
				b.Fatal(n, err)
			}
			r.Close()
		}
	})
}

func BenchmarkObjectStoreDownload(b *testing.B) {
	js, _ := setup(b)
	ctx := context.Background()
	os, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "raw", Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	size := objectSize()
	if _, err := os.Put(ctx, jetstream.ObjectMeta{Name: "obj"}, io.LimitReader(newPattern(), size)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	peakHeap(b, func() {
		for i := 0; i < b.N; i++ {
			r, err := os.Get(ctx, "obj")
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != size {
				b.Fatal(n, err)
			}
			r.Close()
		}
	})
}

// BenchmarkBlobRange measures 1 MiB range reads at the start and at the end of the
// object: the two must cost the same.
func BenchmarkBlobRange(b *testing.B) {
	_, st := setup(b)
	size := objectSize()
	ctx := context.Background()
	// The very first messages of a fresh stream read about 2x slower (a file store
	// first-block effect, not an object-start one): put something before, as in any
	// store that is not brand new.
	if _, err := st.PutObject(ctx, "bench", "warmup", io.LimitReader(newPattern(), 8<<20), 8<<20, blob.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.PutObject(ctx, "bench", "obj", io.LimitReader(newPattern(), size), size, blob.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int64
	}{{"start", 0}, {"end", size - 1<<20}, {"start-again", 0}, {"middle", size / 2}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(1 << 20)
			for i := 0; i < b.N; i++ {
				o, err := st.OpenObject(ctx, "bench", "obj")
				if err != nil {
					b.Fatal(err)
				}
				r, _ := o.NewReader(ctx, tc.off, 1<<20)
				if n, err := io.Copy(io.Discard, r); err != nil || n != 1<<20 {
					b.Fatal(n, err)
				}
				r.Close()
			}
		})
	}
}

// BenchmarkObjectStoreRange is the raw object store's only way to a range: read from the
// beginning and skip.
func BenchmarkObjectStoreRange(b *testing.B) {
	js, _ := setup(b)
	ctx := context.Background()
	os, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "raw", Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	size := objectSize()
	if _, err := os.Put(ctx, jetstream.ObjectMeta{Name: "obj"}, io.LimitReader(newPattern(), size)); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int64
	}{{"start", 0}, {"end", size - 1<<20}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(1 << 20)
			for i := 0; i < b.N; i++ {
				r, err := os.Get(ctx, "obj")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyN(io.Discard, r, tc.off); err != nil {
					b.Fatal(err)
				}
				if n, err := io.CopyN(io.Discard, r, 1<<20); err != nil || n != 1<<20 {
					b.Fatal(n, err)
				}
				r.Close()
			}
		})
	}
}
