package stream_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// b64 is data as a JSON []byte field carries it.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestBadInputStoresNothing: every route refuses text that is not valid UTF-8 where its
// readers need text (JSON messages, JSON and text/* Durable Streams, the state document),
// with 400 invalid_utf8 and nothing stored, whatever the gateway let through.
func TestBadInputStoresNothing(t *testing.T) {
	nc := startStreamHost(t)
	setup := []struct{ method, path, body, want string }{
		{"PUT", "/ds", `{"contentType":"application/json"}`, "201"},
		{"POST", "/ds", `{"contentType":"application/json","data":"` + b64(`{"ok":1}`) + `"}`, "204"},
		{"PUT", "/state", `{"state":{"k":"v"}}`, "200"},
	}
	for _, st := range setup {
		if got := call(t, nc, st.method, st.path, st.body); !strings.HasPrefix(got, st.want) {
			t.Fatalf("%s %s: %s", st.method, st.path, got)
		}
	}
	before := call(t, nc, "GET", "/info", "")
	state := call(t, nc, "GET", "/state", "")
	invalid := "\"\xff\xfe\""
	batch, _ := streamapi.EncodeDSBatch([]streamapi.DSAppend{{ContentType: "application/json", Data: []byte(invalid)}})
	for _, c := range []struct{ name, method, path, body, want string }{
		{"publish", "POST", "/publish", `[{"id":"a","data":` + invalid + `}]`, `200 [{"id":"a","code":"invalid_utf8","message":"message 0 is not valid UTF-8: JSON text must be (RFC 8259)"}]`},
		{"publish in an object", "POST", "/publish", "[{\"id\":\"a\",\"data\":{\"k\":\"\xc3\"}}]", `200 [{"id":"a","code":"invalid_utf8",`},
		{"producer publish", "POST", "/publish", `[{"id":"a","data":` + invalid + `,"producer":{"id":"p","epoch":0,"seq":0}}]`, `200 [{"id":"a","code":"invalid_utf8",`},
		{"append", "POST", "/ds", `{"contentType":"application/json","data":"` + b64(invalid) + `"}`, `400 {"error":{"code":"invalid_utf8",`},
		{"append, not JSON", "POST", "/ds", `{"contentType":"application/json","data":"` + b64(`{`) + `"}`, `400 {"error":{"code":"bad_json",`},
		{"batch", "POST", "/ds/batch", string(batch), `200 [{"status":400,"code":"invalid_utf8",`},
		{"state", "PUT", "/state", `{"state":` + invalid + `}`, `400 {"error":{"code":"invalid_utf8",`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := call(t, nc, c.method, c.path, c.body); !strings.HasPrefix(got, c.want) {
				t.Fatalf("got %s, want %s...", got, c.want)
			}
			if got := call(t, nc, "GET", "/info", ""); got != before {
				t.Fatalf("stored something: /info %s, was %s", got, before)
			}
			if got := call(t, nc, "GET", "/state", ""); got != state {
				t.Fatalf("the state changed: %s, was %s", got, state)
			}
		})
	}
	// A text/* Durable Stream holds UTF-8 text too; a binary one holds any bytes.
	if got := call(t, nc, "DELETE", "/ds", ""); !strings.HasPrefix(got, "204") {
		t.Fatalf("DELETE: %s", got)
	}
	for _, c := range []struct{ ct, want string }{{"text/plain", `400 {"error":{"code":"invalid_utf8",`}, {"application/octet-stream", "201"}} {
		body, _ := json.Marshal(streamapi.DSCreate{ContentType: c.ct, Data: []byte("caf\xe9")})
		if got := call(t, nc, "PUT", "/ds", string(body)); !strings.HasPrefix(got, c.want) {
			t.Fatalf("PUT %s with Latin-1 bytes: %s, want %s", c.ct, got, c.want)
		}
	}
}

// TestEmptyCreateStoresNoRecord: a stream created empty (and open) stores nothing in its
// log, so its first append is its first message at seq 1; a close without a body is a
// record without data, which no read shows (streamapi.IsMessage).
func TestEmptyCreateStoresNoRecord(t *testing.T) {
	nc := startStreamHost(t)
	for _, st := range []struct{ method, path, body, want string }{
		{"PUT", "/ds", `{"contentType":"application/json"}`, `201 {"next":1,`},
		{"GET", "/info", "", `200 {"firstSeq":1,"lastSeq":0}`},
		{"GET", "/ds/read?from=0", "", `200 {"meta":{"contentType":"application/json","createSeq":1,"noRecord":true`},
		{"PUT", "/ds", `{"contentType":"application/json"}`, `200 {"next":1,`}, // the same again: exists alike
		{"POST", "/ds", `{"contentType":"application/json","data":"` + b64(`{"n":1}`) + `"}`, `204 {"next":2}`},
		{"POST", "/ds", `{"closed":true}`, `204 {"next":3,"closed":true}`},
		{"GET", "/info", "", `200 {"firstSeq":1,"lastSeq":2}`},
	} {
		if got := call(t, nc, st.method, st.path, st.body); !strings.HasPrefix(got, st.want) {
			t.Fatalf("%s %s: %s, want %s...", st.method, st.path, got, st.want)
		}
	}
	// A read answers the configuration, tail and closure; readers take the records from
	// the log: the append at seq 1, the close at seq 2 without data (a marker).
	var rd streamapi.DSRead
	got := call(t, nc, "GET", "/ds/read?from=0", "")
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "200 ")), &rd); err != nil {
		t.Fatal(got)
	}
	if len(rd.Msgs) != 0 || !rd.Closed || rd.Next != 3 || rd.Upto != 1 {
		t.Fatalf("read: %s", got)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	log, err := js.Stream(context.Background(), wire.LogStream(streamapi.ClassName, "s"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := log.GetMsg(context.Background(), 1)
	if err != nil || string(first.Data) != `{"n":1}` || first.Header.Get(streamapi.HdrCreate) != "" {
		t.Fatalf("seq 1: %+v, %v", first, err)
	}
	closing, err := log.GetMsg(context.Background(), 2)
	if err != nil || streamapi.IsMessage(closing.Data) || closing.Header.Get(streamapi.HdrClosed) == "" {
		t.Fatalf("seq 2: %+v, %v", closing, err)
	}
}
