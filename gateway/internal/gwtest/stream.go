package gwtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// StreamConn is a test client of /v1/stream.
type StreamConn struct {
	T   *testing.T
	C   *websocket.Conn
	buf []Frame // read but not consumed yet
}

// DialStream opens a /v1/stream connection to path on f.
func DialStream(t *testing.T, f *Fixture, path string) *StreamConn {
	t.Helper()
	return &StreamConn{T: t, C: Dial(t, f, path)}
}

// Frame is any frame a stream connection is sent.
type Frame struct {
	Type     string          `json:"type"`
	ID       *string         `json:"id"`
	Seq      uint64          `json:"seq"`
	Stream   string          `json:"stream"`
	Time     string          `json:"time"`
	Data     json.RawMessage `json:"data"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	FirstSeq uint64          `json:"firstSeq"`
	Result   json.RawMessage `json:"result"`
}

// Buffered are the frames read but not consumed yet.
func (c *StreamConn) Buffered() []Frame { return c.buf }

// Write sends v as a text frame: a string as it is, anything else as JSON.
func (c *StreamConn) Write(v any) {
	c.T.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	if err := c.C.WriteMessage(websocket.TextMessage, b); err != nil {
		c.T.Fatal(err)
	}
}

// Read returns the next frame, buffered or new.
func (c *StreamConn) Read() Frame {
	c.T.Helper()
	if len(c.buf) > 0 {
		f := c.buf[0]
		c.buf = c.buf[1:]
		return f
	}
	return c.ReadRaw()
}

// Await returns the first frame, buffered or new, that match accepts; the others stay
// buffered in order.
func (c *StreamConn) Await(match func(Frame) bool) Frame {
	c.T.Helper()
	for i, f := range c.buf {
		if match(f) {
			c.buf = append(c.buf[:i:i], c.buf[i+1:]...)
			return f
		}
	}
	for i := 0; i < 100000; i++ {
		f := c.ReadRaw()
		if match(f) {
			return f
		}
		c.buf = append(c.buf, f)
	}
	c.T.Fatal("no matching frame")
	return Frame{}
}

// ReadRaw reads the next frame off the connection, past the buffer.
func (c *StreamConn) ReadRaw() Frame {
	c.T.Helper()
	_ = c.C.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.C.ReadMessage()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.T.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// Next reads until a frame of type typ, failing on unexpected message frames.
func (c *StreamConn) Next(typ string) Frame {
	c.T.Helper()
	return c.Await(func(f Frame) bool { return f.Type == typ })
}

// Messages reads n message frames and checks their seqs run from first on.
func (c *StreamConn) Messages(first uint64, n int) []Frame {
	c.T.Helper()
	var out []Frame
	for len(out) < n {
		f := c.Read()
		if f.Type != "message" {
			continue
		}
		if want := first + uint64(len(out)); f.Seq != want {
			c.T.Fatalf("message seq %d, want %d", f.Seq, want)
		}
		out = append(out, f)
	}
	return out
}

// Publish publishes n messages {"n":i} and returns their seqs in order.
func (c *StreamConn) Publish(prefix string, n int) []uint64 {
	c.T.Helper()
	for i := 0; i < n; i++ {
		c.Write(map[string]any{"type": "publish", "id": fmt.Sprintf("%s%d", prefix, i), "data": map[string]any{"n": i, "p": prefix}})
	}
	var seqs []uint64
	for len(seqs) < n {
		f := c.Await(func(f Frame) bool { return f.Type == "published" || f.Type == "error" && f.ID != nil })
		if f.Type == "error" {
			c.T.Fatalf("publish: %s %s", f.Code, f.Message)
		}
		if want := fmt.Sprintf("%s%d", prefix, len(seqs)); f.ID == nil || *f.ID != want {
			c.T.Fatalf("published %v, want id %s", f.ID, want)
		}
		seqs = append(seqs, f.Seq)
	}
	return seqs
}

// PublishAsync publishes without reading (the read side is the caller's concern later).
func (c *StreamConn) PublishAsync(prefix string, n int) []uint64 {
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(map[string]any{"type": "publish", "id": fmt.Sprintf("%s%d", prefix, i), "data": i})
		if err := c.C.WriteMessage(websocket.TextMessage, b); err != nil {
			return nil
		}
	}
	return nil
}

// Command runs a command and returns its reply or error frame.
func (c *StreamConn) Command(id, name string, args any) Frame {
	c.T.Helper()
	c.Write(map[string]any{"type": "command", "id": id, "command": name, "args": args})
	return c.Await(func(f Frame) bool { return f.ID != nil && *f.ID == id && (f.Type == "reply" || f.Type == "error") })
}

// CompatConn is a test client that speaks durable-stream's frames exactly as its client
// does: raw JSON text, so that number spellings are checked byte for byte.
type CompatConn struct {
	T *testing.T
	C *websocket.Conn
}

// DialCompat opens a durable-stream connection (/stream/...) to path on f.
func DialCompat(t *testing.T, f *Fixture, path string) *CompatConn {
	t.Helper()
	return &CompatConn{T: t, C: Dial(t, f, path)}
}

// Send sends raw as a text frame.
func (c *CompatConn) Send(raw string) {
	c.T.Helper()
	if err := c.C.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		c.T.Fatal(err)
	}
}

// Recv reads one frame, keeping every number as its raw text.
func (c *CompatConn) Recv() map[string]json.RawMessage {
	c.T.Helper()
	_ = c.C.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.C.ReadMessage()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		c.T.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// AckPush echoes a push without "pub", as durable-stream's client does.
func (c *CompatConn) AckPush(f map[string]json.RawMessage) {
	c.T.Helper()
	delete(f, "pub")
	b, _ := json.Marshal(f)
	c.Send(string(b))
}

// WantField fails unless f's key holds want, spelled exactly so.
func WantField(t *testing.T, f map[string]json.RawMessage, key, want string) {
	t.Helper()
	if got := string(f[key]); got != want {
		t.Fatalf("%s = %s, want %s (frame %v)", key, got, want, strings.TrimSpace(Dump(f)))
	}
}

// Dump is f as JSON.
func Dump(f map[string]json.RawMessage) string { b, _ := json.Marshal(f); return string(b) }

// Member is a group member's connection read by its own goroutine: message frames go to
// Msgs; with autoAck each is acked once read.
type Member struct {
	C    *websocket.Conn
	Msgs chan uint64
}

// JoinGroup connects a group member at path.
func JoinGroup(t *testing.T, f *Fixture, path string, autoAck bool) *Member {
	t.Helper()
	m := &Member{C: Dial(t, f, path), Msgs: make(chan uint64, 1024)}
	go func() {
		defer close(m.Msgs)
		for {
			_, raw, err := m.C.ReadMessage()
			if err != nil {
				return
			}
			var fr Frame
			if json.Unmarshal(raw, &fr) != nil || fr.Type != "message" {
				continue
			}
			if autoAck {
				b, _ := json.Marshal(map[string]any{"type": "ack", "seq": fr.Seq})
				if m.C.WriteMessage(websocket.TextMessage, b) != nil {
					return
				}
			}
			m.Msgs <- fr.Seq
		}
	}()
	return m
}

// Ack acks seq.
func (m *Member) Ack(t *testing.T, seq uint64) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "ack", "seq": seq})
	if err := m.C.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

// Take reads n seqs from m within 20 s.
func (m *Member) Take(t *testing.T, n int) []uint64 {
	t.Helper()
	return RecvN(t, m.Msgs, n)
}
