package conns

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/internal/natstest"
)

func newTestHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return NewHub(ctx, cfg)
}

// tcpPair is a real loopback connection: the server side under a ready Conn of kind.
func tcpPair(t *testing.T, h *Hub, kind Kind) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	c := h.NewConn(kind)
	c.attach(server)
	c.Ready()
	t.Cleanup(func() { _ = c.closeNow(); _ = client.Close() })
	return c, client
}

// readFrame reads one unmasked frame and returns its opcode and payload.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0] & 0x0f, p, err
}

// A client that stops reading fills its queue: the connection drops what waits, sends a
// close frame with 4008 after the frames that had started, and closes; what arrives is a
// whole, ordered prefix of what was sent. Meanwhile the flusher never waited on it.
func TestSlowConsumerIsClosedWith4008(t *testing.T) {
	h := newTestHub(t, Config{QueueBytes: 64 << 10, WriteTimeout: 2 * time.Second})
	c, client := tcpPair(t, h, StreamSocket)
	msg := bytes.Repeat([]byte("x"), 1000)
	sent := 0
	for deadline := time.Now().Add(20 * time.Second); ; sent++ {
		if time.Now().After(deadline) {
			t.Fatal("the queue never filled")
		}
		payload := append([]byte(nil), msg...)
		binary.BigEndian.PutUint32(payload, uint32(sent))
		if !c.Send(payload) {
			break
		}
	}
	if !c.SlowConsumer() || h.SlowClosed() != 1 {
		t.Fatalf("slow consumer: %v, counted %d", c.SlowConsumer(), h.SlowClosed())
	}
	if c.Send([]byte("more")) {
		t.Fatal("a closing connection took a frame")
	}
	// Another connection is still served while the slow one waits.
	c2, client2 := tcpPair(t, h, StreamSocket)
	c2.Send([]byte("hello"))
	_ = client2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := readFrame(bufio.NewReader(client2)); err != nil || string(p) != "hello" {
		t.Fatalf("other client: %q, %v", p, err)
	}
	r := bufio.NewReader(client)
	_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := 0; ; i++ {
		op, p, err := readFrame(r)
		if err != nil {
			t.Fatalf("frame %d of at most %d: %v", i, sent, err)
		}
		if op == 8 {
			if code := binary.BigEndian.Uint16(p); code != CloseSlowConsumer || string(p[2:]) != SlowConsumerReason {
				t.Fatalf("close frame %d %q", code, p[2:])
			}
			if i > sent {
				t.Fatalf("%d frames before the close, %d sent", i, sent)
			}
			break
		}
		if op != 1 || len(p) != len(msg) || binary.BigEndian.Uint32(p) != uint32(i) {
			t.Fatalf("frame %d: opcode %d, %d bytes, number %d", i, op, len(p), binary.BigEndian.Uint32(p))
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after the close frame: %v, want EOF", err)
	}
	natstest.WaitFor(t, "the connection to end", 5*time.Second, func() bool { return c.Done() && h.Open(StreamSocket) == 1 })
}

// Close sends what is queued, then the close frame, then closes; frames sent before the
// connection was ready go out after what it wrote itself (the handshake).
func TestCloseAfterQueuedAndReadyOrder(t *testing.T) {
	h := newTestHub(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := h.NewConn(ObjectSocket)
		c.SendBinary([]byte("abc")) // before the upgrade
		c.Close(4000, "bye")        // asked for before the upgrade too
		c.attach(nc)
		_, _ = c.writeRaw([]byte("HANDSHAKE"))
		c.Ready()
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	hs := make([]byte, len("HANDSHAKE"))
	if _, err := io.ReadFull(r, hs); err != nil || string(hs) != "HANDSHAKE" {
		t.Fatalf("first: %q, %v", hs, err)
	}
	if op, p, err := readFrame(r); err != nil || op != 2 || string(p) != "abc" {
		t.Fatalf("got opcode %d %q, %v", op, p, err)
	}
	op, p, err := readFrame(r)
	if err != nil || op != 8 || binary.BigEndian.Uint16(p) != 4000 || string(p[2:]) != "bye" {
		t.Fatalf("close: opcode %d %q, %v", op, p, err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after the close frame: %v, want EOF", err)
	}
}

func TestFrameHeaderLengths(t *testing.T) {
	var ws WebSocket
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := ws.AppendMessage(nil, make([]byte, n), false)
		if len(f) != ws.MessageLen(n) {
			t.Fatalf("n=%d: %d bytes, MessageLen %d", n, len(f), ws.MessageLen(n))
		}
		op, p, err := readFrame(bufio.NewReader(bytes.NewReader(f)))
		if err != nil || op != 1 || len(p) != n {
			t.Fatalf("n=%d: opcode %d, %d bytes, %v", n, op, len(p), err)
		}
	}
	c := ws.AppendClose(nil, 1001, strings.Repeat("r", 200))
	if c[0] != 0x88 || int(c[1]) != len(c)-2 || len(c) != 2+125 {
		t.Fatalf("close frame of %d bytes, length byte %d", len(c), c[1])
	}
}

// An event stream taken off net/http: chunked, its heartbeat when idle (and not while
// events flow), and its end the last chunk.
func TestSSEChunksHeartbeatsAndEnd(t *testing.T) {
	h := newTestHub(t, Config{Heartbeat: 160 * time.Millisecond})
	got := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		c := h.NewConn(EventSource)
		c.Send([]byte("retry: 2000\n\n"))
		if !h.AcceptSSE(w, r, c) {
			t.Error("not taken off net/http")
		}
		got <- c
	}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") != "text/event-stream" || len(res.TransferEncoding) != 1 || !res.Close {
		t.Fatalf("headers %v, transfer encoding %v", res.Header, res.TransferEncoding)
	}
	c := <-got
	r := bufio.NewReader(res.Body)
	line := func() string {
		t.Helper()
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := line(); l != "retry: 2000\n" {
		t.Fatalf("first line %q", l)
	}
	line()
	if l := line(); l != ": heartbeat\n" {
		t.Fatalf("idle, got %q", l)
	}
	line()
	c.Send([]byte("data: x\n\n"))
	if l := line(); l != "data: x\n" {
		t.Fatalf("event: %q", l)
	}
	line()
	if h.Open(EventSource) != 1 {
		t.Fatalf("%d event streams open", h.Open(EventSource))
	}
	c.Close(0, "")
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the end: %q, %v", rest, err)
	}
	natstest.WaitFor(t, "the connection to end", 5*time.Second, func() bool { return h.Open(EventSource) == 0 })
}

// echoSession is a Session that echoes each message over its connection.
type echoSession struct {
	c     *Conn
	ended *atomic.Bool
}

var _ Session = echoSession{}

func (e echoSession) Connected()                       { e.c.Ready() }
func (e echoSession) Message(data []byte, binary bool) { e.c.Send(append([]byte("echo "), data...)) }
func (e echoSession) Closing(int, string)              {}
func (e echoSession) Fail(code int, reason string)     { e.c.Close(code, reason) }
func (e echoSession) Disconnected()                    { e.ended.Store(true) }

// A WebSocket accepted by melody off net/http: the handler returns at once, melody runs
// the session (NewMelody's handlers tell the Session), and the connection carries the
// frames sent before and after the upgrade.
func TestAcceptWebSocketWithMelody(t *testing.T) {
	h := newTestHub(t, Config{})
	m := NewMelody(1 << 10)
	var ended atomic.Bool
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := h.NewConn(StreamSocket)
		c.Send([]byte("early"))
		if err := h.AcceptWebSocket(w, r, c, m, echoSession{c: c, ended: &ended}, func() { t.Error("upgrade failed") }); err != nil {
			t.Error(err)
		}
		returned <- struct{}{}
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-returned
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "early" {
		t.Fatalf("first: %q, %v", p, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "echo hi" {
		t.Fatalf("echo: %q, %v", p, err)
	}
	_ = ws.Close()
	natstest.WaitFor(t, "the session to end", 5*time.Second, func() bool { return ended.Load() && h.Open(StreamSocket) == 0 })
}

// A sender that stopped for room hears when the queue drained.
func TestDrainCallback(t *testing.T) {
	h := newTestHub(t, Config{QueueBytes: 8 << 20})
	c, client := tcpPair(t, h, StreamSocket)
	drained := make(chan struct{}, 1)
	c.SetOnDrain(func() { drained <- struct{}{} })
	big := bytes.Repeat([]byte("y"), 1<<20)
	for range 4 {
		c.Send(big)
	}
	c.WantDrain()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("no drain callback")
	}
	if q := c.Queued(); q != 0 {
		t.Fatalf("%d bytes queued at the callback", q)
	}
}

func TestBufferClasses(t *testing.T) {
	for _, tc := range []struct{ n, class int }{{0, 0}, {1, 0}, {4096, 0}, {4097, 1}, {16384, 1}, {16385, 2}, {1 << 20, 4}, {1<<20 + 1, -1}} {
		if c := bufClass(tc.n); c != tc.class {
			t.Errorf("bufClass(%d) = %d, want %d", tc.n, c, tc.class)
		}
		if b := getBuf(tc.n); cap(b) < tc.n || len(b) != 0 {
			t.Errorf("getBuf(%d): len %d cap %d", tc.n, len(b), cap(b))
		}
	}
	b := grow(nil, 10)
	b = append(b, "0123456789"...)
	b = grow(b, 5000)
	if string(b) != "0123456789" || cap(b) < 5010 {
		t.Fatalf("grow kept %q, cap %d", b, cap(b))
	}
}
