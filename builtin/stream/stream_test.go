package stream_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/builtin/stream"
	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// call sends one request to the stream object "s" through a host's activation subject.
func call(t *testing.T, nc *nats.Conn, method, path, body string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, _ := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
	m, err := nc.RequestMsgWithContext(ctx, wire.EncodeRequest(wire.ActivateSubject(streamapi.ClassName), streamapi.ClassName, "s", r, []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if e := m.Header.Get(wire.HdrError); e != "" {
		t.Fatalf("%s %s: %s %s", method, path, e, m.Header.Get(wire.HdrMessage))
	}
	return strconv.Itoa(wire.Status(m)) + " " + string(m.Data)
}

// startStreamHost runs an object host serving the Stream class on a fresh test server and
// returns a connection to that server.
func startStreamHost(t *testing.T) *nats.Conn {
	t.Helper()
	s := natstest.Server(t)
	hosttest.Start(t, natstest.Conn(t, s), runtime.Options{Classes: []objects.Class{stream.Class}})
	return natstest.Conn(t, s)
}

func TestStreamAPI(t *testing.T) {
	nc := startStreamHost(t)
	steps := []struct{ method, path, body, want string }{
		{"GET", "/info", "", `200 {"firstSeq":1,"lastSeq":0}`},
		{"POST", "/configure", `{}`, `200 {"firstSeq":1,"lastSeq":0}`},
		{"POST", "/publish", `[{"id":"a","data":{"x":1}},{"id":"b","data":"two"}]`, `200 [{"id":"a","seq":1},{"id":"b","seq":2}]`},
		{"POST", "/publish", `[]`, `400 {"error":{"code":"bad_args","message":"want 1 to 1024 messages, got 0"}}`},
		{"POST", "/publish", `[{"id":"c"}]`, `400 {"error":{"code":"bad_args","message":"message 0 has no data"}}`},
		{"POST", "/publish", `{`, `400`},
		{"POST", "/delete", `{"upTo":9}`, `400 {"error":{"code":"bad_args","message":"upTo 9 is beyond the last seq 2"}}`},
		{"POST", "/delete", `{}`, `400 {"error":{"code":"bad_args","message":"upTo is required"}}`},
		{"POST", "/delete", `{"upTo":1}`, `200 {"firstSeq":2,"lastSeq":2}`},
		{"GET", "/state", "", `200 {"state":null}`},
		{"PUT", "/state", `{"state":{"k":[1,2]},"checkpoint":2}`, `200 {"checkpoint":2,"firstSeq":3,"lastSeq":2}`},
		{"PUT", "/state", `{"state":"` + strings.Repeat("x", streamapi.MaxStateBytes) + `"}`, `413`},
		{"PUT", "/state", `{"state":7}`, `200 {"checkpoint":2,"firstSeq":3,"lastSeq":2}`},
		{"GET", "/state", "", `200 {"state":7,"checkpoint":2}`},
		{"POST", "/ack", `[{"client":"w1","seq":2}]`, `200 {}`},
		{"POST", "/ack", `[{"client":"w1","seq":1}]`, `200 {}`},
		{"POST", "/ack", `[{"client":"w1","seq":3}]`, `400 {"error":{"code":"bad_args","message":"client \"w1\" acks seq 3 beyond the last seq 2"}}`},
		{"POST", "/ack", `[{"client":"a b","seq":1}]`, `400`},
		{"GET", "/client?id=w1", "", `200 {"client":"w1","seq":2}`},
		{"GET", "/client?id=new", "", `200 {"client":"new","seq":0}`},
		{"POST", "/configure", `{"maxMsgs":-1}`, `400`},
		{"POST", "/configure", `{"maxMsgs":10,"maxAgeMs":60000}`, `200 {"firstSeq":3,"lastSeq":2}`},
		{"GET", "/nope", "", `404`},
	}
	for _, st := range steps {
		got := call(t, nc, st.method, st.path, st.body)
		if got != st.want && !(len(st.want) == 3 && strings.HasPrefix(got, st.want+" ")) {
			t.Fatalf("%s %s: %s, want %s", st.method, st.path, got, st.want)
		}
	}
	js, _ := jetstream.New(nc)
	str, err := js.Stream(context.Background(), wire.LogStream(streamapi.ClassName, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if c := str.CachedInfo().Config; c.MaxMsgs != 10 || c.MaxAge != time.Minute {
		t.Fatalf("retention not applied: %d %v", c.MaxMsgs, c.MaxAge)
	}
}

// TestConfigureCreatesTheLog: a stream nobody published to has its JetStream stream, so
// that readers can start on it.
func TestConfigureCreatesTheLog(t *testing.T) {
	nc := startStreamHost(t)
	call(t, nc, "POST", "/configure", `{}`)
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), wire.LogStream(streamapi.ClassName, "s")); err != nil {
		t.Fatal(err)
	}
}
