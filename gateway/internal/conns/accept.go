package conns

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/olahol/melody"
)

// AcceptWebSocket takes an upgrade request off net/http and hands it to m (a NewMelody):
// melody upgrades it and runs the session (its read pump, pings, the close handshake) on
// a goroutine of its own, telling sess of its events, over c, which carries every frame
// the gateway sends. The handler returns at
// once: net/http's connection, request, response and their buffers (~10 KB), held while a
// handler runs, are freed, and an idle socket keeps melody's two goroutines.
//
// The caller marks c Ready once melody's connect handler ran (frames queued before wait
// until then); failed runs when the upgrade fails once the connection left net/http. The
// request must have been checked already (an upgrade, its origin allowed). An error: the
// connection could not be taken; nothing was written, and c is discarded.
func (h *Hub) AcceptWebSocket(w http.ResponseWriter, r *http.Request, c *Conn, m *melody.Melody, sess Session, failed func()) error {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		c.Discard()
		return err
	}
	c.attach(nc)
	wc := wireConn{Conn: nc, c: c}
	brw.Writer.Reset(wc)
	d := &detached{conn: wc, brw: brw, header: http.Header{}}
	req := detach(r)
	go func() {
		if err := m.HandleRequestWithKeys(d, req, map[string]any{sessKey: sess}); err != nil {
			_ = c.closeNow()
			if failed != nil {
				failed()
			}
		}
	}()
	return nil
}

// detach is the part of an upgrade request melody and gorilla read (melody keeps it in the
// session): not the whole request with its headers and context.
func detach(r *http.Request) *http.Request {
	h := http.Header{}
	for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Version", "Sec-Websocket-Key",
		"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Origin"} {
		if v, ok := r.Header[k]; ok {
			h[k] = v
		}
	}
	return &http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: h, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI}
}

// detached is the ResponseWriter melody upgrades over once the connection has left
// net/http: its Hijack hands back that connection, and an error answer (a handshake gorilla
// refuses) is written on it by hand.
type detached struct {
	conn   net.Conn
	brw    *bufio.ReadWriter
	header http.Header
	wrote  bool
}

var errHijacked = errors.New("conns: connection already hijacked")

func (d *detached) Header() http.Header { return d.header }

func (d *detached) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if d.brw == nil {
		return nil, nil, errHijacked
	}
	brw := d.brw
	d.brw = nil // kept by gorilla only as long as it needs it
	return d.conn, brw, nil
}

func (d *detached) WriteHeader(code int) {
	if d.wrote {
		return
	}
	d.wrote = true
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	d.header.Set("Connection", "close")
	_ = d.header.Write(&b)
	b.WriteString("\r\n")
	_, _ = d.conn.Write(b.Bytes())
}

func (d *detached) Write(p []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return d.conn.Write(p)
}

// AcceptSSE takes an HTTP/1.1 event stream off net/http and puts c on it: it hijacks the
// connection, writes the response's status line and the headers set on w (chunked) itself,
// and watches the connection to see the client leave (an event stream's client sends
// nothing after its request); the handler returns. False, with nothing written: the
// response cannot be taken (HTTP/2, or no hijacking), and its handler serves c with
// ServeResponse instead.
func (h *Hub) AcceptSSE(w http.ResponseWriter, r *http.Request, c *Conn) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hd := w.Header()
	hd.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hd.Set("Transfer-Encoding", "chunked")
	// The connection is not net/http's any more: it closes when the stream ends, and a
	// client must not send its next request on it.
	hd.Set("Connection", "close")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	c.attach(nc)
	c.mu.Lock()
	c.buf = append(b.Bytes(), c.buf...) // the head goes first
	c.mu.Unlock()
	c.Ready()
	h.wheel.add(c)
	go func() {
		var p [64]byte
		for {
			if _, err := nc.Read(p[:]); err != nil {
				_ = c.closeSocket()
				return
			}
		}
	}()
	return true
}
