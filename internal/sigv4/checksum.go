package sigv4

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"math/bits"
	"strings"
)

// Checksum algorithms, by the names S3 uses in x-amz-checksum-<name> (lower case) and
// x-amz-sdk-checksum-algorithm (upper case).
const (
	CRC32     = "CRC32"
	CRC32C    = "CRC32C"
	CRC64NVME = "CRC64NVME"
	SHA1      = "SHA1"
	SHA256    = "SHA256"
)

// Algorithms lists the supported checksum algorithms.
var Algorithms = []string{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// CRC-64/NVME: polynomial 0xAD93D23594C93659, reflected in and out, init and xorout
	// all ones — what hash/crc64 computes with the bit-reversed polynomial.
	nvmeTable = crc64.MakeTable(bits.Reverse64(0xAD93D23594C93659))
)

// NewChecksum returns a hash for an algorithm name (any case), or nil if unknown. Sum
// returns the big-endian digest S3 base64-encodes.
func NewChecksum(alg string) hash.Hash {
	switch strings.ToUpper(alg) {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64.New(nvmeTable)
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

// ChecksumHeader returns the header carrying an algorithm's value: x-amz-checksum-crc32...
func ChecksumHeader(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

// AlgorithmOfHeader returns the algorithm named by an x-amz-checksum-* header, or "".
func AlgorithmOfHeader(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if !strings.HasPrefix(h, "x-amz-checksum-") {
		return ""
	}
	a := strings.ToUpper(strings.TrimPrefix(h, "x-amz-checksum-"))
	if NewChecksum(a) == nil {
		return ""
	}
	return a
}

// EncodeSum returns a digest as S3 shows it (base64).
func EncodeSum(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

// CombineCRC returns the checksum of A‖B from the checksums of A and B (big-endian bytes as
// Sum returns them) and the length of B, for CRC32, CRC32C and CRC64NVME: how the
// full-object checksum of a multipart upload is derived from its parts' checksums
// without reading the data again. ok is false for other algorithms.
func CombineCRC(alg string, a, b []byte, lenB int64) (out []byte, ok bool) {
	var poly uint64
	width := 32
	switch strings.ToUpper(alg) {
	case CRC32:
		poly = uint64(bits.Reverse32(0x04C11DB7))
	case CRC32C:
		poly = uint64(bits.Reverse32(0x1EDC6F41))
	case CRC64NVME:
		poly, width = bits.Reverse64(0xAD93D23594C93659), 64
	default:
		return nil, false
	}
	if len(a) != width/8 || len(b) != width/8 {
		return nil, false
	}
	var x, y uint64
	for i := range a {
		x, y = x<<8|uint64(a[i]), y<<8|uint64(b[i])
	}
	r := combine(x, y, lenB, poly, width)
	out = make([]byte, width/8)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = byte(r)
		r >>= 8
	}
	return out, true
}

// combine appends len2 zero bytes to crc1 through the CRC's linear operator, squaring
// the one-zero-bit operator matrix over GF(2) (the method zlib's crc32_combine made
// well known), then adds crc2.
func combine(crc1, crc2 uint64, len2 int64, poly uint64, width int) uint64 {
	if len2 <= 0 {
		return crc1
	}
	even := make([]uint64, width)
	odd := make([]uint64, width)
	odd[0] = poly
	row := uint64(1)
	for n := 1; n < width; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four zero bits
	for {
		gf2Square(even, odd)
		if len2&1 != 0 {
			crc1 = gf2Times(even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd, even)
		if len2&1 != 0 {
			crc1 = gf2Times(odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(sq, mat []uint64) {
	for n := range mat {
		sq[n] = gf2Times(mat, mat[n])
	}
}
