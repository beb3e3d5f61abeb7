package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair is a real loopback connection: the server side wrapped in a socketConn.
func tcpPair(t *testing.T) (*socketConn, net.Conn) {
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
	c := newSocketConn(server)
	t.Cleanup(func() { _ = c.Close(); _ = client.Close() })
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

func queue(t *testing.T, c *socketConn, f *flusher, data []byte) error {
	t.Helper()
	var hdr [10]byte
	if err := c.appendFrame(frameHeader(hdr[:0], false, len(data)), data); err != nil {
		return err
	}
	f.add(c)
	f.kick()
	return nil
}

// A client that stops reading fills its buffer and is refused more (the gateway then
// closes it as a slow consumer); what was queued still arrives whole and in order once it
// reads, and the flusher never waited on it meanwhile.
func TestSocketConnSlowClientKeepsOrder(t *testing.T) {
	c, client := tcpPair(t)
	f := newFlusher()
	done := make(chan struct{})
	defer close(done)
	go f.run(done)

	msg := bytes.Repeat([]byte("x"), 1000)
	sent := 0
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the buffer never filled")
		}
		payload := append([]byte(nil), msg...)
		binary.BigEndian.PutUint32(payload, uint32(sent))
		err := queue(t, c, f, payload)
		if errors.Is(err, errSlowConsumer) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	// Another connection is still served while the slow one waits.
	c2, client2 := tcpPair(t)
	if err := queue(t, c2, f, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = client2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := readFrame(bufio.NewReader(client2)); err != nil || string(p) != "hello" {
		t.Fatalf("other client: %q, %v", p, err)
	}

	r := bufio.NewReader(client)
	_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range sent {
		op, p, err := readFrame(r)
		if err != nil {
			t.Fatalf("frame %d of %d: %v", i, sent, err)
		}
		if op != 1 || len(p) != len(msg) || binary.BigEndian.Uint32(p) != uint32(i) {
			t.Fatalf("frame %d: opcode %d, %d bytes, number %d", i, op, len(p), binary.BigEndian.Uint32(p))
		}
	}
}

// Close sends what is queued (the close frame gorilla wrote last, say) before closing.
func TestSocketConnCloseSendsQueued(t *testing.T) {
	c, client := tcpPair(t)
	if err := c.appendFrame(frameHeader(nil, true, 3), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	op, p, err := readFrame(bufio.NewReader(client))
	if err != nil || op != 2 || string(p) != "abc" {
		t.Fatalf("got opcode %d %q, %v", op, p, err)
	}
	if err := c.appendFrame(frameHeader(nil, false, 1), []byte("x")); err == nil {
		t.Fatal("a closed connection took a frame")
	}
}

func TestFrameHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		h := frameHeader(nil, false, n)
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(h), bytes.NewReader(make([]byte, n))))
		op, p, err := readFrame(r)
		if err != nil || op != 1 || len(p) != n {
			t.Fatalf("n=%d: opcode %d, %d bytes, %v", n, op, len(p), err)
		}
	}
}
