package conns

import (
	"encoding/binary"
	"strconv"
)

// Transport puts messages on a connection's wire. Each kind of connection has one; the
// queue, the writer and the slow-consumer policy above it are the same for all.
type Transport interface {
	// Name names the transport ("websocket", "sse").
	Name() string
	// AppendMessage appends message p in wire form (binary: a WebSocket binary frame).
	AppendMessage(dst, p []byte, binary bool) []byte
	// MessageLen is the length of a message of n bytes in wire form.
	MessageLen(n int) int
	// AppendClose appends what ends the connection: a close frame with code and reason, the
	// end of a chunked body.
	AppendClose(dst []byte, code int, reason string) []byte
}

var (
	_ Transport = WebSocket{}
	_ Transport = SSE{}
)

// WebSocket is the transport of WebSockets: each message is one frame, unmasked (server
// frames are, so one frame is the same bytes for every connection it goes to).
type WebSocket struct{}

func (WebSocket) Name() string { return "websocket" }

func (WebSocket) AppendMessage(dst, p []byte, binary bool) []byte {
	return appendWSFrame(dst, p, binary)
}

func (WebSocket) MessageLen(n int) int { return wsHeaderLen(n) + n }

// AppendClose appends a close frame; its reason is cut to fit a control frame (125 bytes).
func (WebSocket) AppendClose(dst []byte, code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	dst = append(dst, 0x88, byte(2+len(reason)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// appendWSFrame frames one data message (FIN set, no mask). Every text frame the gateway
// sends comes through here.
func appendWSFrame(dst, p []byte, binaryFrame bool) []byte {
	dst = appendWSHeader(dst, binaryFrame, len(p))
	return append(dst, p...)
}

func wsHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// appendWSHeader appends a server frame's header (FIN set, no mask) for a payload of n bytes.
func appendWSHeader(dst []byte, binaryFrame bool, n int) []byte {
	op := byte(0x1)
	if binaryFrame {
		op = 0x2
	}
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return dst
}

// SSE is the transport of event streams. Chunked: the body of an HTTP/1.1 response
// taken from net/http, each message one chunk; not: a body its handler writes (HTTP/2).
// A message is one or more complete events; the end is the chunked body's last chunk.
type SSE struct{ Chunked bool }

func (SSE) Name() string { return "sse" }

func (t SSE) AppendMessage(dst, p []byte, _ bool) []byte {
	if !t.Chunked {
		return append(dst, p...)
	}
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, p...)
	return append(dst, '\r', '\n')
}

func (t SSE) MessageLen(n int) int {
	if !t.Chunked {
		return n
	}
	return len(strconv.FormatInt(int64(n), 16)) + 4 + n
}

func (t SSE) AppendClose(dst []byte, _ int, _ string) []byte {
	if !t.Chunked {
		return dst
	}
	return append(dst, "0\r\n\r\n"...)
}
