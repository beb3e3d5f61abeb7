package conns

import (
	"math/bits"
	"sync"
)

// Queue buffers come from pools by size (4 KiB to 1 MiB, powers of four) and go back once
// written: a connection holds a buffer only while something waits in it, and a burst (a
// window's worth of frames after an ack) does not grow a fresh one from nothing each time.
// Growing buffers by append was nine tenths of what a fan-out allocated.
const (
	minBufShift = 12 // 4 KiB
	bufClasses  = 5  // 4 KiB, 16 KiB, 64 KiB, 256 KiB, 1 MiB
)

var bufPools [bufClasses]sync.Pool

// bufClass is the class of a buffer of at least n bytes, or -1 past the largest.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	c := (bits.Len(uint(n-1)) - minBufShift + 1) / 2
	if c >= bufClasses {
		return -1
	}
	return c
}

func classSize(c int) int { return 1 << (minBufShift + 2*c) }

// getBuf is an empty buffer with room for at least n bytes.
func getBuf(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, classSize(c))
}

// putBuf hands a buffer from getBuf back.
func putBuf(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != classSize(c) {
		return
	}
	b = b[:0]
	bufPools[c].Put(&b)
}

// grow makes room for n more bytes in b, moving it to a larger pooled buffer when needed.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := getBuf(max(len(b)+n, 2*cap(b)))
	nb = append(nb, b...)
	putBuf(b)
	return nb
}
