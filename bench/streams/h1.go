package main

// A lean HTTP/1.1 keep-alive client for the append scenarios. Go's net/http client spends
// more CPU per request than a fast server does (on a 2-core VM it capped a bare handler at
// 11-20k requests/s), so with it the generator, not the server, sets the pace. This one
// is still a real client of the same protocol for every server: one keep-alive connection
// per worker, a full request with Content-Length, and a full response read (status line,
// headers, a Content-Length or chunked body, or a body to EOF); it just allocates almost
// nothing per request. Only the append scenarios use it; the round trip keeps net/http.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

type h1conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	req  []byte // the request line and headers, up to the blank line, without Content-Length
	buf  []byte
}

// newH1 prepares POSTs of Content-Type ctype to rawURL; it connects on first use.
func newH1(rawURL, ctype string) (*h1conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("h1: %s: only http", rawURL)
	}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: holdfast-bench\r\nContent-Type: %s\r\n", u.RequestURI(), u.Host, ctype)
	return &h1conn{addr: u.Host, req: []byte(req)}, nil
}

func (h *h1conn) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

// post sends body and reads the whole response; it returns the status and the
// Stream-Next-Offset header. A connection the server closed is redialed once.
func (h *h1conn) post(body []byte) (int, string, error) {
	fresh := h.c == nil
	if fresh {
		if err := h.dial(); err != nil {
			return 0, "", err
		}
	}
	st, next, err := h.do(body)
	if err != nil && !fresh && errors.Is(err, errStale) {
		h.close()
		if err := h.dial(); err != nil {
			return 0, "", err
		}
		st, next, err = h.do(body)
	}
	if err != nil {
		h.close()
	}
	return st, next, err
}

// errStale is a kept-alive connection the server had closed before our request.
var errStale = errors.New("h1: connection closed by the server")

func (h *h1conn) dial() error {
	c, err := net.DialTimeout("tcp", h.addr, 10*time.Second)
	if err != nil {
		return err
	}
	h.c = c
	if h.br == nil {
		h.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		h.br.Reset(c)
	}
	return nil
}

func (h *h1conn) do(body []byte) (int, string, error) {
	_ = h.c.SetDeadline(time.Now().Add(60 * time.Second))
	b := append(h.buf[:0], h.req...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	if len(body) <= 64<<10 {
		b = append(b, body...)
		body = nil
	}
	h.buf = b
	if _, err := h.c.Write(b); err != nil {
		return 0, "", errStale
	}
	if body != nil {
		if _, err := h.c.Write(body); err != nil {
			return 0, "", err
		}
	}
	line, err := h.line()
	if err != nil {
		if err == io.EOF {
			return 0, "", errStale
		}
		return 0, "", err
	}
	// HTTP/1.1 204 No Content
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, "", fmt.Errorf("h1: bad status line %q", line)
	}
	st, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, "", fmt.Errorf("h1: bad status line %q", line)
	}
	clen, chunked, closing := int64(-1), false, false
	var next string
	for {
		line, err := h.line()
		if err != nil {
			return 0, "", err
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, "", fmt.Errorf("h1: bad header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEq(k, "content-length"):
			if clen, err = strconv.ParseInt(string(v), 10, 64); err != nil || clen < 0 {
				return 0, "", fmt.Errorf("h1: bad Content-Length %q", v)
			}
		case asciiEq(k, "transfer-encoding"):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case asciiEq(k, "connection"):
			closing = bytes.EqualFold(v, []byte("close"))
		case asciiEq(k, "stream-next-offset"):
			next = string(v)
		}
	}
	switch {
	case st == 204 || st == 304 || st < 200:
	case chunked:
		err = h.chunks()
	case clen >= 0:
		_, err = h.br.Discard(int(clen))
	default:
		_, err = io.Copy(io.Discard, h.br)
		closing = true
	}
	if err != nil {
		return 0, "", err
	}
	if closing {
		h.close()
	}
	return st, next, nil
}

// line reads one CRLF-terminated line, without the line break (valid until the next read).
func (h *h1conn) line() ([]byte, error) {
	l, err := h.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(l) == 0 {
			return nil, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

// chunks reads a chunked body and its trailers.
func (h *h1conn) chunks() error {
	for {
		l, err := h.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(l)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("h1: bad chunk size %q", l)
		}
		if n == 0 {
			for { // trailers, up to the blank line
				l, err := h.line()
				if err != nil {
					return err
				}
				if len(l) == 0 {
					return nil
				}
			}
		}
		if _, err := h.br.Discard(int(n)); err != nil {
			return err
		}
		if l, err := h.line(); err != nil || len(l) != 0 {
			return fmt.Errorf("h1: chunk not followed by CRLF")
		}
	}
}

func asciiEq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
