package dssubs_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/internal/dssubs"
	"github.com/holdfast/holdfast/gateway/internal/gwtest"
	"github.com/holdfast/holdfast/internal/natstest"
)

// hookReceiver is a webhook endpoint on 127.0.0.1 that records notifications and answers
// each with the next status and body of its script (the last one repeats).
type hookReceiver struct {
	url    string
	mu     sync.Mutex
	got    []hookNote
	script []hookReply
}

type hookReply struct {
	status int
	body   string
}

type hookNote struct {
	raw, sig string
	at       time.Time
	body     struct {
		SubscriptionID string `json:"subscription_id"`
		WakeID         string `json:"wake_id"`
		Generation     uint64 `json:"generation"`
		Streams        []struct {
			Path       string `json:"path"`
			LinkType   string `json:"link_type"`
			Acked      string `json:"acked_offset"`
			Tail       string `json:"tail_offset"`
			HasPending bool   `json:"has_pending"`
		} `json:"streams"`
		CallbackURL   string `json:"callback_url"`
		CallbackToken string `json:"callback_token"`
	}
}

func newHookReceiver(t *testing.T, script ...hookReply) *hookReceiver {
	hr := &hookReceiver{script: script}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := hookNote{raw: string(b), sig: r.Header.Get("Webhook-Signature"), at: time.Now()}
		_ = json.Unmarshal(b, &n.body)
		hr.mu.Lock()
		i := min(len(hr.got), len(hr.script)-1)
		hr.got = append(hr.got, n)
		reply := hookReply{200, "{}"}
		if i >= 0 {
			reply = hr.script[i]
		}
		hr.mu.Unlock()
		w.WriteHeader(reply.status)
		_, _ = io.WriteString(w, reply.body)
	}))
	t.Cleanup(srv.Close)
	hr.url = srv.URL + "/hook"
	return hr
}

func (hr *hookReceiver) await(t *testing.T, n int) []hookNote {
	t.Helper()
	natstest.WaitFor(t, strconv.Itoa(n)+" webhook notifications", 10*time.Second, func() bool {
		hr.mu.Lock()
		defer hr.mu.Unlock()
		return len(hr.got) >= n
	})
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return append([]hookNote(nil), hr.got...)
}

var sigRE = regexp.MustCompile(`^t=(\d+),kid=([^,]+),ed25519=([A-Za-z0-9_-]+)$`)

// verifyHook checks a notification's signature against a JWKS document.
func verifyHook(t *testing.T, n hookNote, jwks string) {
	t.Helper()
	m := sigRE.FindStringSubmatch(n.sig)
	if m == nil {
		t.Fatalf("signature header %q", n.sig)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(jwks), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k["kid"] != m[2] {
			continue
		}
		x, _ := base64.RawURLEncoding.DecodeString(k["x"])
		sig, _ := base64.RawURLEncoding.DecodeString(m[3])
		if !ed25519.Verify(ed25519.PublicKey(x), []byte(m[1]+"."+n.raw), sig) {
			t.Fatal("the signature does not verify")
		}
		return
	}
	t.Fatalf("kid %s not in the JWKS %s", m[2], jwks)
}

func getSub(t *testing.T, url string, hdr map[string]string) map[string]any {
	t.Helper()
	st, _, b := gwtest.DSDo(t, http.MethodGet, url, hdr, "")
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, st, b)
	}
	var v map[string]any
	_ = json.Unmarshal([]byte(b), &v)
	return v
}

// TestDSSubsWebhookTwoGateways: a subscription made on one gateway is woken by an append
// on another; both gateways sign with the same key; the callback works on either without
// an API key (the wake token is its credential) and fences a stale wake.
func TestDSSubsWebhookTwoGateways(t *testing.T) {
	keys := []string{"k1"}
	s, _, f1 := gwtest.StartStreams(t, gateway.Options{APIKeys: keys, WebhookAllowLocalhost: true})
	f2 := gwtest.StartGateway(t, s, gateway.Options{Streams: true, Routes: []gateway.Route{}, APIKeys: keys, WebhookAllowLocalhost: true})
	auth := map[string]string{"Authorization": "Bearer k1", "Content-Type": "application/json"}
	hr := newHookReceiver(t)
	sub := f1.URL + "/v1/stream/__ds/subscriptions/s1"
	cfg := `{"type":"webhook","pattern":"ev/*","webhook":{"url":"` + hr.url + `"},"lease_ttl_ms":5000}`
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, cfg); st != http.StatusUnauthorized {
		t.Fatalf("PUT without a key: %d %s", st, b)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, auth, cfg); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, auth, strings.Replace(cfg, "5000", "6000", 1)); st != http.StatusConflict {
		t.Fatalf("PUT with another configuration: %d %s", st, b)
	}
	_, _, jwks1 := gwtest.DSDo(t, http.MethodGet, f1.URL+"/v1/stream/__ds/jwks.json", nil, "")
	st, _, jwks2 := gwtest.DSDo(t, http.MethodGet, f2.URL+"/v1/stream/__ds/jwks.json", nil, "")
	if st != http.StatusOK || jwks1 != jwks2 {
		t.Fatalf("JWKS differ across gateways: %d %s / %s", st, jwks1, jwks2)
	}
	// The other gateway may see the subscription a moment later; wait for its mirror.
	natstest.WaitFor(t, "gateway 2 mirrors the subscription", 5*time.Second, func() bool {
		return dssubs.Mirrored(f2.GW.ID(), "s1")
	})
	if st, _, b := gwtest.DSDo(t, http.MethodPut, f2.URL+"/v1/stream/ev/a", auth, `{"n":1}`); st != http.StatusCreated {
		t.Fatalf("PUT stream: %d %s", st, b)
	}
	n := hr.await(t, 1)[0]
	verifyHook(t, n, jwks1)
	if n.body.SubscriptionID != "s1" || len(n.body.Streams) != 1 || !n.body.Streams[0].HasPending || n.body.Streams[0].Acked != gwtest.Offset(0) {
		t.Fatalf("notification: %s", n.raw)
	}
	tail := n.body.Streams[0].Tail
	cb := strings.Replace(n.body.CallbackURL, f1.URL, f2.URL, 1)
	ack := `{"wake_id":"` + n.body.WakeID + `","generation":` + strconv.FormatUint(n.body.Generation, 10) +
		`,"acks":[{"stream":"ev/a","offset":"` + tail + `"}],"done":true}`
	if st, _, b := gwtest.DSDo(t, http.MethodPost, cb, gwtest.Bearer("nope"), ack); st != http.StatusUnauthorized {
		t.Fatalf("callback with a bad token: %d %s", st, b)
	}
	badOffset := strings.Replace(ack, tail, gwtest.Offset(999), 1)
	if st, _, b := gwtest.DSDo(t, http.MethodPost, cb, gwtest.Bearer(n.body.CallbackToken), badOffset); st != http.StatusConflict || !strings.Contains(b, "INVALID_OFFSET") {
		t.Fatalf("callback beyond the tail: %d %s", st, b)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, cb, gwtest.Bearer(n.body.CallbackToken), ack); st != http.StatusOK || !strings.Contains(b, `"next_wake":false`) {
		t.Fatalf("callback: %d %s", st, b)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, cb, gwtest.Bearer(n.body.CallbackToken), ack); st != http.StatusConflict || !strings.Contains(b, "FENCED") {
		t.Fatalf("stale callback: %d %s", st, b)
	}
	got := getSub(t, sub, auth)
	if ls := got["streams"].([]any); len(ls) != 1 || ls[0].(map[string]any)["acked_offset"] != tail {
		t.Fatalf("after the ack: %v", got)
	}
	// A second append wakes generation 2.
	if st, _, _ := gwtest.DSDo(t, http.MethodPost, f1.URL+"/v1/stream/ev/a", auth, `{"n":2}`); st != http.StatusNoContent {
		t.Fatalf("POST: %d", st)
	}
	n2 := hr.await(t, 2)[1]
	if n2.body.Generation != n.body.Generation+1 || n2.body.Streams[0].Acked != tail {
		t.Fatalf("second wake: %s", n2.raw)
	}
	if st, _, _ := gwtest.DSDo(t, http.MethodDelete, sub, auth, ""); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d", st)
	}
	ack2 := `{"wake_id":"` + n2.body.WakeID + `","generation":` + strconv.FormatUint(n2.body.Generation, 10) + `,"done":true}`
	if st, _, b := gwtest.DSDo(t, http.MethodPost, cb, gwtest.Bearer(n2.body.CallbackToken), ack2); st != http.StatusNotFound {
		t.Fatalf("callback after DELETE: %d %s", st, b)
	}
}

// TestDSSubsWebhookRetry: a failing webhook is retried (same wake, about a second later,
// status "failed" meanwhile) until it answers {"done":true}, which acks the snapshot.
func TestDSSubsWebhookRetry(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{WebhookAllowLocalhost: true, PublicURL: "https://pub.example/api"})
	hr := newHookReceiver(t, hookReply{500, "no"}, hookReply{200, `{"done":true}`})
	sub := f.URL + "/v1/stream/__ds/subscriptions/r1"
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, `{"type":"webhook","streams":["rt/x"],"webhook":{"url":"`+hr.url+`"},"lease_ttl_ms":1000}`); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	if st, _, _ := gwtest.DSDo(t, http.MethodPut, f.URL+"/v1/stream/rt/x", map[string]string{"Content-Type": "text/plain"}, "hi"); st != http.StatusCreated {
		t.Fatal("PUT stream")
	}
	first := hr.await(t, 1)[0]
	if first.body.CallbackURL != "https://pub.example/api/v1/stream/__ds/subscriptions/r1/callback" {
		t.Fatalf("callback_url under PublicURL: %s", first.body.CallbackURL)
	}
	natstest.WaitFor(t, "status failed", 5*time.Second, func() bool {
		_, _, b := gwtest.DSDo(t, http.MethodGet, sub, nil, "")
		return strings.Contains(b, `"status":"failed"`) || len(hr.await(t, 1)) > 1
	})
	ns := hr.await(t, 2)
	if ns[1].body.WakeID != first.body.WakeID || ns[1].at.Sub(first.at) < 700*time.Millisecond {
		t.Fatalf("retry: wake %s after %v (first %s)", ns[1].body.WakeID, ns[1].at.Sub(first.at), first.body.WakeID)
	}
	tail := ns[1].body.Streams[0].Tail
	natstest.WaitFor(t, "the done reply acks the snapshot", 5*time.Second, func() bool {
		v := getSub(t, sub, nil)
		ls := v["streams"].([]any)
		return v["status"] == "active" && len(ls) == 1 && ls[0].(map[string]any)["acked_offset"] == tail
	})
}

// TestDSSubsPullWake: wake events go to the wake stream; a claim holds a lease that
// expires, after which another worker claims a newer generation and the old token is fenced.
func TestDSSubsPullWake(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	js := map[string]string{"Content-Type": "application/json"}
	base := f.URL + "/v1/stream/"
	sub := base + "__ds/subscriptions/p1"
	cfg := `{"type":"pull-wake","pattern":"pw/**","wake_stream":"wk/pool","lease_ttl_ms":1000}`
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, js, cfg); st != http.StatusBadRequest {
		t.Fatalf("PUT before the wake stream exists: %d %s", st, b)
	}
	gwtest.DSDo(t, http.MethodPut, base+"wk/text", map[string]string{"Content-Type": "text/plain"}, "")
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, js, strings.Replace(cfg, "wk/pool", "wk/text", 1)); st != http.StatusBadRequest || !strings.Contains(b, "application/json") {
		t.Fatalf("PUT with a text wake stream: %d %s", st, b)
	}
	gwtest.DSDo(t, http.MethodPut, base+"wk/pool", js, "")
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, js, cfg); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, sub+"/claim", js, `{"worker":"w0"}`); st != http.StatusConflict || !strings.Contains(b, "NO_PENDING_WORK") {
		t.Fatalf("claim with nothing pending: %d %s", st, b)
	}
	gwtest.DSDo(t, http.MethodPut, base+"pw/a/b", js, `{"n":1}`)
	natstest.WaitFor(t, "a wake event", 5*time.Second, func() bool {
		_, _, b := gwtest.DSDo(t, http.MethodGet, base+"wk/pool?offset=-1", nil, "")
		return strings.Contains(b, `"subscription_id":"p1"`) && strings.Contains(b, `"stream":"pw/a/b"`)
	})
	type claimed struct {
		WakeID     string `json:"wake_id"`
		Generation uint64 `json:"generation"`
		Token      string `json:"token"`
	}
	claim := func(worker string) (int, claimed, string) {
		st, _, b := gwtest.DSDo(t, http.MethodPost, sub+"/claim", js, `{"worker":"`+worker+`"}`)
		var c claimed
		_ = json.Unmarshal([]byte(b), &c)
		return st, c, b
	}
	st, c1, b := claim("w1")
	if st != http.StatusOK {
		t.Fatalf("claim: %d %s", st, b)
	}
	if st, _, b := claim("w2"); st != http.StatusConflict || !strings.Contains(b, `"current_holder":"w1"`) {
		t.Fatalf("second claim: %d %s", st, b)
	}
	heartbeat := `{"wake_id":"` + c1.WakeID + `","generation":` + strconv.FormatUint(c1.Generation, 10) + `}`
	if st, _, b := gwtest.DSDo(t, http.MethodPost, sub+"/ack", gwtest.Bearer(c1.Token), heartbeat); st != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", st, b)
	}
	// w1 goes silent: once its lease lapses the work is claimable again, one generation on.
	var c2 claimed
	natstest.WaitFor(t, "the lease to lapse", 10*time.Second, func() bool {
		var st int
		st, c2, _ = claim("w2")
		return st == http.StatusOK
	})
	if c2.Generation <= c1.Generation {
		t.Fatalf("generation %d after %d", c2.Generation, c1.Generation)
	}
	if st, _, b := gwtest.DSDo(t, http.MethodPost, sub+"/ack", gwtest.Bearer(c1.Token), heartbeat); st != http.StatusConflict || !strings.Contains(b, "FENCED") {
		t.Fatalf("the lapsed worker's ack: %d %s", st, b)
	}
	rel := `{"wake_id":"` + c2.WakeID + `","generation":` + strconv.FormatUint(c2.Generation, 10) + `}`
	if st, _, b := gwtest.DSDo(t, http.MethodPost, sub+"/release", gwtest.Bearer(c2.Token), rel); st != http.StatusNoContent {
		t.Fatalf("release: %d %s", st, b)
	}
	// Released with work pending: a new wake event is written.
	natstest.WaitFor(t, "a wake event after release", 5*time.Second, func() bool {
		_, _, b := gwtest.DSDo(t, http.MethodGet, base+"wk/pool?offset=-1", nil, "")
		return strings.Contains(b, `"generation":`+strconv.FormatUint(c2.Generation+1, 10))
	})
}

// TestDSSubsReconcile: a gateway that misses every log publish still wakes the
// subscription on reconciliation, which also discovers streams made meanwhile; deleting
// a stream drops its glob link.
func TestDSSubsReconcile(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{WebhookAllowLocalhost: true})
	natstest.WaitFor(t, "the subscriptions part", 5*time.Second, func() bool { return dssubs.Opened(f.GW.ID()) })
	dssubs.NoMatcher(f.GW.ID())
	hr := newHookReceiver(t, hookReply{200, `{"done":true}`})
	sub := f.URL + "/v1/stream/__ds/subscriptions/q1"
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, `{"type":"webhook","pattern":"rc/*","webhook":{"url":"`+hr.url+`"}}`); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	text := map[string]string{"Content-Type": "text/plain"}
	gwtest.DSDo(t, http.MethodPut, f.URL+"/v1/stream/rc/a", text, "data")
	hr.mu.Lock()
	early := len(hr.got)
	hr.mu.Unlock()
	if early != 0 {
		t.Fatal("woken without a matcher")
	}
	dssubs.Poke(f.GW.ID(), "q1", true) // what the reconcile timer does
	n := hr.await(t, 1)[0]
	if len(n.body.Streams) != 1 || n.body.Streams[0].Path != "rc/a" || !n.body.Streams[0].HasPending {
		t.Fatalf("notification: %s", n.raw)
	}
	natstest.WaitFor(t, "the auto-ack", 5*time.Second, func() bool {
		v := getSub(t, sub, nil)
		ls := v["streams"].([]any)
		return len(ls) == 1 && ls[0].(map[string]any)["acked_offset"] == n.body.Streams[0].Tail
	})
	if st, _, _ := gwtest.DSDo(t, http.MethodDelete, f.URL+"/v1/stream/rc/a", nil, ""); st != http.StatusNoContent {
		t.Fatalf("DELETE stream: %d", st)
	}
	dssubs.Poke(f.GW.ID(), "q1", false)
	natstest.WaitFor(t, "the glob link of a deleted stream to go", 5*time.Second, func() bool {
		return len(getSub(t, sub, nil)["streams"].([]any)) == 0
	})
}

// TestDSSubsWakeLatency measures append → webhook latency (sequential: each append waits
// for the previous wake's {"done":true} to be recorded). Run with HF_MEASURE=1.
func TestDSSubsWakeLatency(t *testing.T) {
	if os.Getenv("HF_MEASURE") == "" {
		t.Skip("HF_MEASURE=1 runs the measurement")
	}
	_, _, f := gwtest.StartStreams(t, gateway.Options{WebhookAllowLocalhost: true})
	hr := newHookReceiver(t, hookReply{200, `{"done":true}`})
	sub := f.URL + "/v1/stream/__ds/subscriptions/lat"
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, `{"type":"webhook","pattern":"lat/*","webhook":{"url":"`+hr.url+`"}}`); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	text := map[string]string{"Content-Type": "text/plain"}
	idle := func(tail string) {
		natstest.WaitFor(t, "idle", 5*time.Second, func() bool {
			_, _, b := gwtest.DSDo(t, http.MethodGet, sub, nil, "")
			return strings.Contains(b, `"acked_offset":"`+tail+`"`)
		})
	}
	_, h, _ := gwtest.DSDo(t, http.MethodPut, f.URL+"/v1/stream/lat/a", text, "x")
	seen := len(hr.await(t, 1))
	idle(h.Get("Stream-Next-Offset"))
	const n = 200
	var lat []time.Duration
	for range n {
		start := time.Now()
		st, h, _ := gwtest.DSDo(t, http.MethodPost, f.URL+"/v1/stream/lat/a", text, "x")
		if st != http.StatusNoContent {
			t.Fatalf("POST: %d", st)
		}
		seen++
		got := hr.await(t, seen)[seen-1]
		lat = append(lat, got.at.Sub(start))
		idle(h.Get("Stream-Next-Offset"))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("append → webhook over %d wakes: p50 %v p90 %v p99 %v max %v", n, lat[n/2], lat[n*9/10], lat[n*99/100], lat[n-1])
}

// TestDSSubsRetryAfterGatewayLoss: the retry schedule is cluster state: when the gateway
// that made the failed delivery goes away, another one delivers the retry.
func TestDSSubsRetryAfterGatewayLoss(t *testing.T) {
	s, _, f1 := gwtest.StartStreams(t, gateway.Options{WebhookAllowLocalhost: true})
	f2 := gwtest.StartGateway(t, s, gateway.Options{Streams: true, Routes: []gateway.Route{}, WebhookAllowLocalhost: true})
	// Keep gateway 2 off the log subjects, so that gateway 1 makes the first delivery.
	dssubs.NoMatcher(f2.GW.ID())
	hr := newHookReceiver(t, hookReply{503, "busy"}, hookReply{200, `{"done":true}`})
	sub := f1.URL + "/v1/stream/__ds/subscriptions/f1"
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, `{"type":"webhook","streams":["fo/x"],"webhook":{"url":"`+hr.url+`"}}`); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	gwtest.DSDo(t, http.MethodPut, f1.URL+"/v1/stream/fo/x", map[string]string{"Content-Type": "text/plain"}, "x")
	first := hr.await(t, 1)[0]
	natstest.WaitFor(t, "the failure recorded", 5*time.Second, func() bool {
		_, _, b := gwtest.DSDo(t, http.MethodGet, sub, nil, "")
		return strings.Contains(b, `"status":"failed"`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f1.GW.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second := hr.await(t, 2)[1]
	if second.body.WakeID != first.body.WakeID {
		t.Fatalf("the retry is another wake: %s then %s", first.body.WakeID, second.body.WakeID)
	}
	natstest.WaitFor(t, "the done reply recorded by gateway 2", 5*time.Second, func() bool {
		_, _, b := gwtest.DSDo(t, http.MethodGet, f2.URL+"/v1/stream/__ds/subscriptions/f1", nil, "")
		return strings.Contains(b, `"status":"active"`) && strings.Contains(b, `"acked_offset":"`+second.body.Streams[0].Tail+`"`)
	})
}

// TestDSSubsAppendsDuringWake: appends while a wake runs start no other wake; acking the
// wake's snapshot with done wakes again at once (next_wake), covering everything appended.
func TestDSSubsAppendsDuringWake(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{WebhookAllowLocalhost: true})
	hr := newHookReceiver(t, hookReply{200, `{}`})
	sub := f.URL + "/v1/stream/__ds/subscriptions/hot"
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, `{"type":"webhook","pattern":"hot/*","webhook":{"url":"`+hr.url+`"},"lease_ttl_ms":60000}`); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	text := map[string]string{"Content-Type": "text/plain"}
	u := f.URL + "/v1/stream/hot/a"
	gwtest.DSDo(t, http.MethodPut, u, text, "0")
	n := hr.await(t, 1)[0]
	var last string
	for range 50 {
		st, h, _ := gwtest.DSDo(t, http.MethodPost, u, text, "x")
		if st != http.StatusNoContent {
			t.Fatalf("POST: %d", st)
		}
		last = h.Get("Stream-Next-Offset")
	}
	if got := len(hr.await(t, 1)); got != 1 {
		t.Fatalf("%d notifications while the wake ran", got)
	}
	ack := `{"wake_id":"` + n.body.WakeID + `","generation":` + strconv.FormatUint(n.body.Generation, 10) +
		`,"acks":[{"stream":"hot/a","offset":"` + n.body.Streams[0].Tail + `"}],"done":true}`
	if st, _, b := gwtest.DSDo(t, http.MethodPost, n.body.CallbackURL, gwtest.Bearer(n.body.CallbackToken), ack); st != http.StatusOK || !strings.Contains(b, `"next_wake":true`) {
		t.Fatalf("callback: %d %s", st, b)
	}
	n2 := hr.await(t, 2)[1]
	if n2.body.Streams[0].Tail != last || n2.body.Streams[0].Acked != n.body.Streams[0].Tail {
		t.Fatalf("second wake: %s (last offset %s)", n2.raw, last)
	}
}

// TestDSWebhookDialCheck: without the development exception the API refuses a loopback
// webhook (and the client refuses it at connect time too: TestWebhookClientDialCheck).
func TestDSWebhookDialCheck(t *testing.T) {
	hr := newHookReceiver(t)
	_, _, f := gwtest.StartStreams(t, gateway.Options{})
	st, _, b := gwtest.DSDo(t, http.MethodPut, f.URL+"/v1/stream/__ds/subscriptions/prod", nil, `{"type":"webhook","pattern":"x/*","webhook":{"url":"`+hr.url+`"}}`)
	if st != http.StatusBadRequest || !strings.Contains(b, "WEBHOOK_URL_REJECTED") {
		t.Fatalf("production gateway took a loopback webhook: %d %s", st, b)
	}
}

// TestDSSubsMatcherFilters: the matcher listens to the log subjects its subscriptions
// cover (each pattern's filter, each explicit stream), not to every stream's publishes,
// and to none once the last subscription is gone.
func TestDSSubsMatcherFilters(t *testing.T) {
	_, _, f := gwtest.StartStreams(t, gateway.Options{WebhookAllowLocalhost: true})
	hr := newHookReceiver(t)
	filters := func() []string { return dssubs.MatcherFilters(f.GW.ID()) }
	want := func(what string, w ...string) {
		t.Helper()
		natstest.WaitFor(t, what, 5*time.Second, func() bool { return slices.Equal(filters(), w) })
	}
	sub := f.URL + "/v1/stream/__ds/subscriptions/mf"
	if st, _, b := gwtest.DSDo(t, http.MethodPut, sub, nil, `{"type":"webhook","pattern":"ev/*","webhook":{"url":"`+hr.url+`"}}`); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	want("the pattern's filter", "hf.log.Stream.ev.*")
	if st, _, b := gwtest.DSDo(t, http.MethodPost, sub+"/streams", nil, `{"streams":["one/two"]}`); st != http.StatusNoContent {
		t.Fatalf("add stream: %d %s", st, b)
	}
	want("the explicit stream's subject too", "hf.log.Stream.ev.*", "hf.log.Stream.one.two")
	if st, _, b := gwtest.DSDo(t, http.MethodDelete, sub, nil, ""); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", st, b)
	}
	want("no filter without subscriptions")
}
