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
