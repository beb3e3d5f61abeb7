package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const maxChunkLine = 4096

type lineReader struct{ *bufio.Reader }

func newLineReader(r io.Reader) *lineReader { return &lineReader{bufio.NewReaderSize(r, 64<<10)} }

// line reads one CRLF-terminated line (without it), at most maxChunkLine bytes.
func (l *lineReader) line() (string, error) {
	var buf []byte
	for {
		frag, err := l.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxChunkLine {
			return "", ErrChunkFormat
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return "", io.EOF
			}
			return "", ErrIncomplete
		}
		if err != nil {
			return "", err
		}
		break
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return string(buf), nil
}

// chunkedReader decodes an aws-chunked body:
//
//	<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//	[<trailer>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
//
// verifying each chunk's signature (chained from the seed signature) once its data has
// been read, and the trailer's signature.
type chunkedReader struct {
	r                *lineReader
	signed, trailer  bool
	key              []byte
	prevSig          string
	stsPrefix        string // "<amz date>\n<scope>\n"
	want             int64  // decoded length, -1 unknown
	allowed          []string
	out              http.Header
	left             int64 // bytes left in the current chunk
	chunkSig         string
	h                hash.Hash
	total            int64
	err              error
	inChunk, started bool
}

func (c *chunkedReader) fail(err error) (int, error) {
	c.err = err
	return 0, err
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if c.inChunk {
			// End of a chunk's data: CRLF, then its signature.
			l, err := c.r.line()
			if err != nil || l != "" {
				if err == nil || err == io.EOF {
					err = ErrChunkFormat
				}
				return c.fail(err)
			}
			if c.signed && !c.verifyChunk() {
				return c.fail(ErrSignature)
			}
			c.inChunk = false
		}
		l, err := c.r.line()
		if err == io.EOF {
			err = ErrIncomplete
		}
		if err != nil {
			return c.fail(err)
		}
		sizeStr, ext, _ := strings.Cut(l, ";")
		size, perr := strconv.ParseInt(strings.TrimSpace(sizeStr), 16, 64)
		if perr != nil || size < 0 || len(sizeStr) > 16 {
			return c.fail(ErrChunkFormat)
		}
		c.chunkSig = ""
		if c.signed {
			k, v, ok := strings.Cut(ext, "=")
			if !ok || k != "chunk-signature" || len(v) != 64 {
				return c.fail(ErrChunkFormat)
			}
			c.chunkSig = v
		}
		if c.want >= 0 && c.total+size > c.want {
			return c.fail(errf(400, "InvalidRequest", "aws-chunked body longer than x-amz-decoded-content-length"))
		}
		if c.signed {
			if c.h == nil {
				c.h = sha256.New()
			}
			c.h.Reset()
		}
		if size == 0 {
			if c.signed && !c.verifyChunk() {
				return c.fail(ErrSignature)
			}
			if err := c.finish(); err != nil {
				return c.fail(err)
			}
			c.err = io.EOF
			return 0, io.EOF
		}
		c.left, c.inChunk = size, true
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.total += int64(n)
	if c.signed {
		c.h.Write(p[:n])
	}
	if err == io.EOF {
		if c.left > 0 {
			c.err = ErrIncomplete
			return n, ErrIncomplete
		}
		err = nil
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *chunkedReader) verifyChunk() bool {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.stsPrefix + c.prevSig + "\n" + emptySHA256 + "\n" + hex.EncodeToString(c.h.Sum(nil))
	want := hmacSHA256(c.key, []byte(sts))
	got, err := hex.DecodeString(c.chunkSig)
	if err != nil || !hmac.Equal(want, got) {
		return false
	}
	c.prevSig = c.chunkSig
	return true
}

// finish reads the trailer (if any) after the last chunk and checks the decoded length.
func (c *chunkedReader) finish() error {
	if c.want >= 0 && c.total != c.want {
		return ErrIncomplete
	}
	var canon strings.Builder
	trailerSig := ""
	for {
		l, err := c.r.line()
		if err == io.EOF {
			break // some clients end right after the last trailer line
		}
		if err != nil {
			return err
		}
		if l == "" {
			if c.signed && c.trailer && trailerSig == "" && len(c.out) > 0 {
				// minio-go ends its trailer lines with LF and puts a blank line before
				// the trailer signature.
				continue
			}
			break
		}
		if !c.trailer {
			return ErrChunkFormat
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return ErrChunkFormat
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if k == "x-amz-trailer-signature" {
			trailerSig = v
			continue
		}
		allowed := false
		for _, a := range c.allowed {
			allowed = allowed || a == k
		}
		if !allowed {
			return errf(400, "InvalidRequest", "trailer %q was not declared in x-amz-trailer", k)
		}
		if len(c.out) > 16 {
			return ErrChunkFormat
		}
		c.out.Set(k, v)
		canon.WriteString(k + ":" + v + "\n")
	}
	for _, a := range c.allowed {
		if c.out.Get(a) == "" {
			return errf(400, "InvalidRequest", "declared trailer %q is missing", a)
		}
	}
	if c.signed && c.trailer {
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.stsPrefix + c.prevSig + "\n" + hexSHA256([]byte(canon.String()))
		want := hmacSHA256(c.key, []byte(sts))
		got, err := hex.DecodeString(trailerSig)
		if err != nil || !hmac.Equal(want, got) {
			return ErrSignature
		}
	}
	return nil
}
