// Package httprange owns RFC 9110's range requests for the file surfaces (/v1/files, /r2
// and S3): reading the Range header (section 14.2), If-Range (13.1.5), and the
// preconditions evaluated before a range (13.2.2), so that every surface answers the same
// bad input the same way:
//
//   - a satisfiable range → 206 with Content-Range: bytes first-last/size;
//   - well-formed byte ranges none of which is satisfiable (a first byte at or past the
//     end, "bytes=-0") → 416 with Content-Range: bytes */size;
//   - an unknown unit, a malformed range ("bytes=--1", "bytes=5-3", "bytes=a-b"), or too
//     many ranges → the Range header is ignored: 200 with the whole body.
//
// Nothing here can turn bad input into a server error: every number is checked against
// the representation's size, and numbers too large for int64 saturate.
package httprange

import (
	"errors"
	"strconv"
	"strings"
)

// Range is a satisfiable byte range of a representation: Length >= 1 bytes from Start,
// ending inside it.
type Range struct {
	Start, Length int64
}

// End is the offset of the range's last byte.
func (r Range) End() int64 { return r.Start + r.Length - 1 }

// ContentRange is the range's Content-Range header value for a representation of size
// bytes: "bytes 0-99/1000".
func (r Range) ContentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.End(), 10) + "/" + strconv.FormatInt(size, 10)
}

// Unsatisfied is the Content-Range header value of a 416 answer: "bytes */size".
func Unsatisfied(size int64) string { return "bytes */" + strconv.FormatInt(size, 10) }

// ErrUnsatisfiable is Parse's answer for byte ranges none of which the representation
// holds: answer 416 with Content-Range: Unsatisfied(size).
var ErrUnsatisfiable = errors.New("httprange: no requested range is satisfiable")

// MaxRanges bounds the ranges of one header. A header with more is ignored (RFC 9110
// lets a server ignore a Range, and a client asking for hundreds of pieces is better
// served the whole).
const MaxRanges = 100

// Parse reads a Range header value against a representation of size bytes. It returns:
//
//   - nil, nil when the header should be ignored and the whole representation sent: it
//     is empty, has a unit other than bytes, is malformed, holds more than MaxRanges
//     ranges, or asks for a suffix of an empty representation (nothing to cut);
//   - nil, ErrUnsatisfiable when the ranges are well formed but none is satisfiable;
//   - the satisfiable ranges, in the order asked, otherwise (unsatisfiable ones among
//     them dropped, as RFC 9110 has it). Callers that serve one range only (S3, R2)
//     ignore a header with several, as AWS S3 does.
func Parse(header string, size int64) ([]Range, error) {
	unit, set, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || size < 0 {
		return nil, nil
	}
	var out []Range
	specs, suffixOfEmpty := 0, false
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // empty list elements are allowed (RFC 9110 section 5.6.1)
		}
		if specs++; specs > MaxRanges {
			return nil, nil
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return nil, nil
		}
		if first == "" {
			// suffix-range = "-" suffix-length
			n, ok := digits(last)
			if !ok {
				return nil, nil
			}
			switch {
			case n == 0:
			case size == 0:
				suffixOfEmpty = true
			default:
				n = min(n, size)
				out = append(out, Range{Start: size - n, Length: n})
			}
			continue
		}
		// int-range = first-pos "-" [ last-pos ]
		start, ok := digits(first)
		if !ok {
			return nil, nil
		}
		end := int64(-1)
		if last != "" {
			if end, ok = digits(last); !ok || end < start {
				return nil, nil
			}
		}
		if start >= size {
			continue
		}
		if end < 0 || end >= size {
			end = size - 1
		}
		out = append(out, Range{Start: start, Length: end - start + 1})
	}
	switch {
	case specs == 0, len(out) == 0 && suffixOfEmpty:
		return nil, nil
	case len(out) == 0:
		return nil, ErrUnsatisfiable
	}
	return out, nil
}

// digits reads 1*DIGIT, saturating at the largest int64: a position past any
// representation is still a position, unsatisfiable rather than malformed.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63-1-int64(c-'0'))/10 {
			n = 1<<63 - 1
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Total is the number of bytes the ranges cover, counting overlaps twice.
func Total(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Length
	}
	return n
}
