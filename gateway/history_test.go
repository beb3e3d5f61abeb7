package gateway_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/httperr"
)

// strictReader is a WebSocket subscriber that checks what a strict client (a browser,
// Node's ws) checks: every text frame is valid UTF-8 (RFC 6455 section 8.1). It passes on
// the message frames, and stops at a frame a strict client refuses, passed on with Type
// "refused" and the raw frame as Message.
type strictReader struct{ msgs chan gwtest.Frame }

func readStrict(t *testing.T, f *gwtest.Fixture, path string) *strictReader {
	t.Helper()
	c := gwtest.Dial(t, f, path)
	r := &strictReader{msgs: make(chan gwtest.Frame, 64)}
	go func() {
		defer close(r.msgs)
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var fr gwtest.Frame
			if mt != websocket.TextMessage || !utf8.Valid(b) || json.Unmarshal(b, &fr) != nil {
				r.msgs <- gwtest.Frame{Type: "refused", Message: string(b)}
				return
			}
			if fr.Type == "message" {
				r.msgs <- fr
			}
		}
	}()
	return r
}

// take reads n message frames as "seq data", failing on a frame a strict client refuses.
func (r *strictReader) Take(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for _, m := range gwtest.RecvN(t, r.msgs, n) {
		if m.Type == "refused" {
			t.Fatalf("a frame a strict client fails the connection on: %q (after %q)", m.Message, out)
		}
		out = append(out, u64(m.Seq)+" "+string(m.Data))
	}
	return out
}

func u64(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestInvalidUTF8IsNotStored is issue 13's reproduction: PUT a JSON stream, POST
// "\xff\xfe": 400 invalid_utf8, nothing stored, and a strict WebSocket subscriber reading
// from seq 1 never sees it. The same bytes from the other writers of a stream (a
// WebSocket publish, a durable-stream frame, an sse-cluster POST) are refused as well.
func TestInvalidUTF8IsNotStored(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	u := f.URL + "/v1/stream/utf8"
	js := map[string]string{"Content-Type": "application/json"}
	if st, _, b := gwtest.DSDo(t, http.MethodPut, u, js, ""); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	sub := readStrict(t, f, "/v1/stream/utf8")
	st, h, b := gwtest.DSDo(t, http.MethodPost, u, js, "\"\xff\xfe\"")
	var e httperr.Body
	if st != http.StatusBadRequest || json.Unmarshal([]byte(b), &e) != nil || e.Error.Code != httperr.CodeInvalidUTF8 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("POST \"\\xff\\xfe\": %d %s", st, b)
	}
	// The other writers of the stream, each refused without storing anything.
	ws := gwtest.DialStream(t, f, "/v1/stream/utf8?from=latest")
	ws.Write("{\"type\":\"publish\",\"id\":\"p1\",\"data\":\"\xc3\"}")
	refusedWS(t, ws.C)
	compat := gwtest.DialCompat(t, f, "/stream/utf8")
	compat.Send("{\"data\":{\"k\":\"\xff\"},\"cMsgId\":1,\"clientId\":1}")
	refusedCompat(t, compat)
	if st, _, b := gwtest.DSDo(t, http.MethodPost, f.URL+"/channel/utf8", nil, "{\"data\":\"\xfe\"}"); st != http.StatusBadRequest || !strings.Contains(b, `"invalid_utf8"`) {
		t.Fatalf("POST /channel: %d %s", st, b)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, f.URL+"/channel/utf8", nil, `{"event":"x\ndata: forged","data":1}`); st != http.StatusBadRequest {
		t.Fatalf("POST /channel with a line break in the event name: %d %s", st, b)
	}
	// Nothing was stored: the next append is the stream's first message, at seq 1.
	if st, _, b := gwtest.DSDo(t, http.MethodPost, u, js, `{"ok":true}`); st != http.StatusNoContent {
		t.Fatalf("POST: %d %s", st, b)
	}
	if got := sub.Take(t, 1); got[0] != `1 {"ok":true}` {
		t.Fatalf("the subscriber from seq 1 got %q", got)
	}
	st, h, b = gwtest.DSDo(t, http.MethodGet, u+"?offset=-1", nil, "")
	if st != http.StatusOK || b != `[{"ok":true}]` || h.Get("Stream-Next-Offset") != gwtest.Offset(2) {
		t.Fatalf("GET: %d %s next %s", st, b, h.Get("Stream-Next-Offset"))
	}
}

// refusedWS waits for a stream connection's answer to a frame that is not UTF-8: an error
// frame invalid_utf8, or (once the gateway checks text frames as they are read) a close
// with 1007.
func refusedWS(t *testing.T, c *websocket.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.CloseInvalidFramePayloadData {
			return
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var fr gwtest.Frame
		if json.Unmarshal(b, &fr) == nil && fr.Type == "error" {
			if fr.Code != "invalid_utf8" {
				t.Fatalf("error frame %s, want invalid_utf8", b)
			}
			return
		}
	}
}

// refusedCompat is refusedWS for a durable-stream client: the frame echoed with an
// "error" instead of a "sequence", or a close with 1007.
func refusedCompat(t *testing.T, c *gwtest.CompatConn) {
	t.Helper()
	_ = c.C.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.C.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.CloseInvalidFramePayloadData {
		return
	}
	var fr struct {
		Sequence json.RawMessage `json:"sequence"`
		Error    struct{ Code string }
	}
	if err != nil || json.Unmarshal(b, &fr) != nil || fr.Sequence != nil || fr.Error.Code != "invalid_utf8" {
		t.Fatalf("durable-stream frame not UTF-8: %v %s", err, b)
	}
}

// TestOneHistoryAcrossProtocols (issue 13, item 6): a stream created by PUT, appended to
// and closed over HTTP shows the same messages at the same seqs to every reader: a
// WebSocket subscriber from seq 1, a consumer group member, a durable-stream client, an
// EventSource and an HTTP read. No reader sees a message for the create or for a close
// without a body (streamapi.IsMessage), and HTTP offsets are the WebSocket seqs.
func TestOneHistoryAcrossProtocols(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	u := f.URL + "/v1/stream/one"
	js := map[string]string{"Content-Type": "application/json"}
	st, h, _ := gwtest.DSDo(t, http.MethodPut, u, js, "")
	if st != http.StatusCreated || h.Get("Stream-Next-Offset") != gwtest.Offset(1) {
		t.Fatalf("PUT: %d, next %s: an empty create takes no offset", st, h.Get("Stream-Next-Offset"))
	}
	sub := readStrict(t, f, "/v1/stream/one")
	group := gwtest.JoinGroup(t, f, "/v1/stream/one?group=g&client=m1", true)
	compat := gwtest.DialCompat(t, f, "/stream/one")
	compat.Send(`{"data":{"cmd":"subscribe","startSequence":0},"cMsgId":1,"clientId":1}`)
	if r := compat.Recv(); string(r["sequence"]) != "100000000000" {
		t.Fatalf("compat subscribe: %s", gwtest.Dump(r))
	}
	for _, body := range []string{`{"a":1}`, `[{"b":2}]`} {
		if st, _, b := gwtest.DSDo(t, http.MethodPost, u, js, body); st != http.StatusNoContent {
			t.Fatalf("POST %s: %d %s", body, st, b)
		}
	}
	// A close without a body: a marker record, which no reader shows.
	st, h, _ = gwtest.DSDo(t, http.MethodPost, u, map[string]string{"Stream-Closed": "true"}, "")
	if st != http.StatusNoContent || h.Get("Stream-Next-Offset") != gwtest.Offset(4) {
		t.Fatalf("close: %d, next %s", st, h.Get("Stream-Next-Offset"))
	}
	want := []string{`1 {"a":1}`, `2 {"b":2}`}
	if got := sub.Take(t, 2); !slices.Equal(got, want) {
		t.Fatalf("WebSocket subscriber from 1: %q, want %q", got, want)
	}
	if got := group.Take(t, 2); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("group member: %v", got)
	}
	for i, wantData := range []string{`{"a":1}`, `{"b":2}`} {
		p := compat.Recv()
		gwtest.WantField(t, p, "sequence", u64(100000000001+uint64(i)))
		gwtest.WantField(t, p, "data", wantData)
		compat.AckPush(p)
	}
	// Late readers, from the start: the same two messages and nothing else.
	late := readStrict(t, f, "/v1/stream/one")
	if got := late.Take(t, 2); !slices.Equal(got, want) {
		t.Fatalf("a late WebSocket subscriber: %q", got)
	}
	st, h, b := gwtest.DSDo(t, http.MethodGet, u+"?offset=-1", nil, "")
	if st != http.StatusOK || b != `[{"a":1},{"b":2}]` || h.Get("Stream-Next-Offset") != gwtest.Offset(4) || h.Get("Stream-Closed") != "true" {
		t.Fatalf("GET: %d %s next %s closed %q", st, b, h.Get("Stream-Next-Offset"), h.Get("Stream-Closed"))
	}
	// Offsets are seqs: reading from the second message's seq gives the second message.
	if st, _, b := gwtest.DSDo(t, http.MethodGet, u+"?offset="+gwtest.Offset(2), nil, ""); st != http.StatusOK || b != `[{"b":2}]` {
		t.Fatalf("GET from offset 2: %d %s", st, b)
	}
	lines, _ := gwtest.SSELines(t, u, gwtest.AcceptEvents)
	got := gwtest.AwaitLine(t, lines, func(l string) bool { return l == `data:{"b":2}` })
	var ids []string
	for _, l := range got {
		if v, ok := strings.CutPrefix(l, "id: "); ok {
			ids = append(ids, v)
		}
		if l == "data:" || l == `data:""` {
			t.Fatalf("EventSource shows an empty message: %q", got)
		}
	}
	if !slices.Equal(ids, []string{"1", "2"}) {
		t.Fatalf("EventSource ids %q, want 1 and 2", ids)
	}
	select {
	case m := <-sub.msgs:
		t.Fatalf("the subscriber got a third message: seq %d %s", m.Seq, m.Data)
	default:
	}
}
