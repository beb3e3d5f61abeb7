package blob

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Bucket string `json:"-"`
	Key    string `json:"k"`
	Size   int64  `json:"s"`
	// ETag is the unquoted entity tag: the hex MD5 of the body, or for a multipart object
	// the hex MD5 of the parts' MD5s followed by "-<parts>", as S3 computes it.
	ETag     string    `json:"e"`
	Modified time.Time `json:"m"`
	// ContentType and the other standard headers kept with the object.
	ContentType string            `json:"ct,omitempty"`
	Headers     map[string]string `json:"h,omitempty"` // Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires
	Meta        map[string]string `json:"u,omitempty"` // user metadata, lower-case names without x-amz-meta-
	// Checksums holds full-object checksums supplied by the client and verified, by
	// algorithm name (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), base64 as S3 shows them.
	Checksums map[string]string `json:"cs,omitempty"`
	// Parts is the number of parts of a multipart object, 0 for a single PUT.
	Parts int `json:"p,omitempty"`
	// Rev is the record's revision in the metadata KV.
	Rev uint64 `json:"-"`
}

// segment is one blob's share of an object's bytes.
type segment struct {
	Blob  string   `json:"b"`
	Size  int64    `json:"s"`
	Chunk int      `json:"c"`
	Ext   []uint64 `json:"x,omitempty"` // pairs: first stream seq, number of consecutive seqs
	// Sums are the checksums of a multipart object's part.
	Sums map[string]string `json:"cs,omitempty"`
}

type objectRecord struct {
	ObjectInfo
	Layout []segment `json:"l"`
}

type bucketRecord struct {
	Created time.Time `json:"created"`
}

type uploadRecord struct {
	Key       string    `json:"k"`
	Initiated time.Time `json:"t"`
	Put       PutOptions
}

type partRecord struct {
	Number    int               `json:"n"`
	Size      int64             `json:"s"`
	MD5       string            `json:"md5"`
	Modified  time.Time         `json:"m"`
	Checksums map[string]string `json:"cs,omitempty"`
	Seg       segment           `json:"seg"`
}

var b64 = base64.RawURLEncoding

func bucketToken(b string) string { return strings.ReplaceAll(b, ".", "=") }
func tokenBucket(t string) string { return strings.ReplaceAll(t, "=", ".") }

func bucketKey(b string) string { return "b." + bucketToken(b) }
func objectKey(b, k string) string {
	return "o." + bucketToken(b) + "." + b64.EncodeToString([]byte(k))
}
func objectPrefix(b string) string         { return "o." + bucketToken(b) + "." }
func uploadKey(b, id string) string        { return "u." + bucketToken(b) + "." + id }
func partKey(id string, n int) string      { return "p." + id + "." + itoa(n) }
func partPrefix(id string) string          { return "p." + id + "." }
func itoa(n int) string                    { b, _ := json.Marshal(n); return string(b) }
func blobSubject(prefix, id string) string { return prefix + id }

// CheckKey reports whether key is acceptable as an object key: 1 to 1024 bytes of valid
// UTF-8 without NUL, and no "." or ".." path segment (which would let a key escape its
// prefix on clients that map keys to files).
func CheckKey(key string) error {
	if !utf8.ValidString(key) {
		return ErrKeyNotUTF8
	}
	if key == "" || len(key) > 1024 || strings.IndexByte(key, 0) >= 0 {
		return ErrBadKey
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return ErrBadKey
		}
	}
	return nil
}

// checkMeta reports whether the metadata kept with an object is text: it is stored as JSON
// strings and given back in headers and listings, so bytes that are not UTF-8 would come
// back altered.
func (o *PutOptions) checkMeta() error {
	ok := utf8.ValidString(o.ContentType)
	for _, m := range []map[string]string{o.Headers, o.Meta} {
		for k, v := range m {
			ok = ok && utf8.ValidString(k) && utf8.ValidString(v)
		}
	}
	if !ok {
		return ErrMetaNotUTF8
	}
	return nil
}

// CheckBucketName reports whether name follows S3's bucket naming rules: 3 to 63
// characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit, with no
// "..".
func CheckBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") {
		return ErrBadBucketName
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-') && i > 0 && i < len(name)-1:
		default:
			return ErrBadBucketName
		}
	}
	return nil
}

// blobs returns the ids of the blobs an object record refers to.
func (r *objectRecord) blobs() []string {
	out := make([]string, 0, len(r.Layout))
	for _, s := range r.Layout {
		if s.Size > 0 {
			out = append(out, s.Blob)
		}
	}
	return out
}
