package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/examples/chat"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/hosttest"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

var bindings = map[string]string{chat.RoomsBinding: "ChatRoom", chat.LimitersBinding: "RateLimiter"}

// noLimits runs the rooms without a "limiters" binding: they do not rate-limit, so that
// tests that are not about rate limits may send as fast as they like. (A session with a
// limiter refuses frames while its last frame's limiter call is out, as in the original.)
var noLimits = map[string]string{chat.RoomsBinding: "ChatRoom"}

// fastLimits keeps the limiter but lets a client send as often as its calls come back.
var fastLimits = map[string]string{"CHAT_RATE_INTERVAL": "0s"}

// startHost serves both classes, with both bindings unless opts names its own.
func startHost(t *testing.T, nc *nats.Conn, opts runtime.Options) *runtime.Host {
	t.Helper()
	if opts.Classes == nil {
		opts.Classes = []objects.Class{chat.Room, chat.Limiter}
	}
	if opts.Namespaces == nil {
		opts.Namespaces = bindings
	}
	return hosttest.Start(t, nc, opts)
}

// startGateway serves the chat as holdfast.toml declares it. The trusted proxy header
// lets each test client claim its own IP, so rate limits do not leak between them.
func startGateway(t *testing.T, s *server.Server) string {
	t.Helper()
	gw, err := gateway.New(natstest.Conn(t, s), gateway.Options{
		Routes: []gateway.Route{
			{Pattern: "/", Function: chat.Edge},
			{Pattern: "/api/", Function: chat.Edge},
		},
		Namespaces:         bindings,
		TrustedProxyHeader: "X-Forwarded-For",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
	})
	natstest.WaitFor(t, "gateway ready", 10*time.Second, gw.Ready)
	return srv.URL
}

// setup starts NATS, one host and one gateway.
func setup(t *testing.T, opts runtime.Options) (*server.Server, *runtime.Host, string) {
	t.Helper()
	s := natstest.Server(t)
	h := startHost(t, natstest.Conn(t, s), opts)
	return s, h, startGateway(t, s)
}

// frame is any frame the room sends.
type frame struct {
	Name      string `json:"name"`
	Message   string `json:"message"`
	Timestamp int64  `json:"timestamp"`
	Joined    string `json:"joined"`
	Quit      string `json:"quit"`
	Ready     bool   `json:"ready"`
	Error     string `json:"error"`
	raw       string
}

type client struct {
	t    *testing.T
	c    *websocket.Conn
	name string
}

// dial opens a room's WebSocket as a client at ip.
func dial(t *testing.T, base, room, ip string) *client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/api/room/" + url.PathEscape(room) + "/websocket"
	c, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"X-Forwarded-For": {ip}})
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial %s: %v %s", u, err, body)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, c: c}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(string(b))
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send %s: %v", s, err)
	}
}

func (c *client) next() frame {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, m, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("%s: reading: %v", c.name, err)
	}
	var f frame
	if err := json.Unmarshal(m, &f); err != nil {
		c.t.Fatalf("%s: bad frame %s: %v", c.name, m, err)
	}
	f.raw = string(m)
	return f
}

// expect reads the next frame and checks its JSON, ignoring the timestamp of messages.
func (c *client) expect(want string) frame {
	c.t.Helper()
	f := c.next()
	got := f.raw
	if f.Timestamp != 0 {
		got = regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(got, "")
	}
	if got != want {
		c.t.Fatalf("%s: got %s, want %s", c.name, f.raw, want)
	}
	return f
}

// join sends the name frame and reads through ready, returning the frames before it.
func (c *client) join(name string) []frame {
	c.t.Helper()
	c.name = name
	c.send(map[string]string{"name": name})
	var got []frame
	for range 1000 {
		f := c.next()
		if f.Ready {
			return got
		}
		got = append(got, f)
	}
	c.t.Fatalf("%s: no ready frame", name)
	return nil
}

func (c *client) say(text string) {
	c.t.Helper()
	c.send(map[string]string{"message": text})
}

// sayAccepted says text until the room takes it, and returns the sender's own copy. A
// session is refused while its previous frame's limiter call is out (the original's
// RateLimiterClient does the same), so a frame sent right after another may have to be
// sent again. The sender must expect no other frame meanwhile.
func (c *client) sayAccepted(text string) frame {
	c.t.Helper()
	want := fmt.Sprintf(`{"name":%q,"message":%q}`, c.name, text)
	for range 200 {
		c.say(text)
		f := c.next()
		if f.raw == rateLimited {
			continue
		}
		if got := regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(f.raw, ""); got != want {
			c.t.Fatalf("%s: got %s, want %s", c.name, f.raw, want)
		}
		return f
	}
	c.t.Fatalf("%s: %q refused 200 times", c.name, text)
	return frame{}
}

// expectClosed reads until the server closes the socket, returning the close code.
func (c *client) expectClosed() int {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for range 1000 {
		if _, _, err := c.c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				c.t.Fatalf("%s: expected a close, got %v", c.name, err)
			}
			return ce.Code
		}
	}
	c.t.Fatalf("%s: not closed", c.name)
	return 0
}

func raws(fs []frame) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.raw)
	}
	return strings.Join(s, " ")
}

func TestJoinChatQuit(t *testing.T) {
	_, _, base := setup(t, runtime.Options{Namespaces: noLimits})
	alice := dial(t, base, "lobby", "10.0.0.1")
	if got := raws(alice.join("alice")); got != `{"joined":"alice"}` {
		t.Fatalf("alice before ready: %s", got)
	}
	bob := dial(t, base, "lobby", "10.0.0.2")
	// Who is here, then the (empty) history, then bob itself, then ready.
	if got := raws(bob.join("bob")); got != `{"joined":"alice"} {"joined":"bob"}` {
		t.Fatalf("bob before ready: %s", got)
	}
	alice.expect(`{"joined":"bob"}`)

	alice.say("hi bob")
	// The sender gets its own message back too.
	m1 := alice.expect(`{"name":"alice","message":"hi bob"}`)
	m2 := bob.expect(`{"name":"alice","message":"hi bob"}`)
	if m1.Timestamp != m2.Timestamp || m1.Timestamp < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("timestamps %d %d", m1.Timestamp, m2.Timestamp)
	}
	bob.say("hello")
	alice.expect(`{"name":"bob","message":"hello"}`)
	bob.expect(`{"name":"bob","message":"hello"}`)

	// A member that has not named itself yet gets nothing, and is not announced.
	lurker := dial(t, base, "lobby", "10.0.0.3")
	alice.say("before carol")
	alice.expect(`{"name":"alice","message":"before carol"}`)
	bob.expect(`{"name":"alice","message":"before carol"}`)
	// When it joins, it gets the history, including what was said while it was unnamed.
	got := raws(lurker.join("carol"))
	got = regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(got, "")
	want := `{"joined":"alice"} {"joined":"bob"} {"name":"alice","message":"hi bob"} {"name":"bob","message":"hello"} {"name":"alice","message":"before carol"} {"joined":"carol"}`
	if got != want {
		t.Fatalf("carol before ready:\n got %s\nwant %s", got, want)
	}
	alice.expect(`{"joined":"carol"}`)
	bob.expect(`{"joined":"carol"}`)

	_ = bob.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	alice.expect(`{"quit":"bob"}`)
	lurker.expect(`{"quit":"bob"}`)

	// A missing name is "anonymous", as in the original.
	anon := dial(t, base, "lobby", "10.0.0.4")
	anon.send(map[string]any{})
	if got := raws(readUntilReady(anon)); !strings.HasSuffix(got, `{"joined":"anonymous"}`) {
		t.Fatalf("anonymous: %s", got)
	}
}

func readUntilReady(c *client) []frame {
	c.t.Helper()
	var got []frame
	for range 1000 {
		f := c.next()
		if f.Ready {
			return got
		}
		got = append(got, f)
	}
	c.t.Fatal("no ready frame")
	return nil
}

// TestHistory: the last 100 messages, in order, with strictly increasing timestamps, also
// for messages sent within one millisecond.
func TestHistory(t *testing.T) {
	_, _, base := setup(t, runtime.Options{Namespaces: noLimits})
	alice := dial(t, base, "history", "10.0.1.1")
	alice.join("alice")
	const n = 130
	for i := range n {
		alice.say(fmt.Sprint("m", i))
	}
	var last int64
	for i := range n {
		f := alice.expect(fmt.Sprintf(`{"name":"alice","message":"m%d"}`, i))
		if f.Timestamp <= last {
			t.Fatalf("message %d: timestamp %d after %d", i, f.Timestamp, last)
		}
		last = f.Timestamp
	}
	bob := dial(t, base, "history", "10.0.1.2")
	before := bob.join("bob")
	if len(before) != 1+100+1 {
		t.Fatalf("bob got %d frames before ready: %s", len(before), raws(before))
	}
	for i, f := range before[1:101] {
		if want := fmt.Sprint("m", n-100+i); f.Message != want {
			t.Fatalf("history[%d] = %s, want %s", i, f.raw, want)
		}
	}
	if before[100].Timestamp != last {
		t.Fatalf("newest history timestamp %d, want %d", before[100].Timestamp, last)
	}
}

// TestErrors covers every error frame of the protocol.
func TestErrors(t *testing.T) {
	_, _, base := setup(t, runtime.Options{Namespaces: noLimits})

	t.Run("name too long", func(t *testing.T) {
		c := dial(t, base, "errors", "10.0.2.1")
		c.send(map[string]string{"name": strings.Repeat("n", 33)})
		c.expect(`{"error":"Name too long."}`)
		if code := c.expectClosed(); code != 1009 {
			t.Fatalf("close code %d, want 1009", code)
		}
		// 32 characters is fine, counted as JavaScript does (a surrogate pair is 2).
		ok := dial(t, base, "errors", "10.0.2.2")
		ok.join(strings.Repeat("😀", 16))
		long := dial(t, base, "errors", "10.0.2.3")
		long.send(map[string]string{"name": strings.Repeat("😀", 16) + "x"})
		long.expect(`{"error":"Name too long."}`)
	})

	t.Run("message too long", func(t *testing.T) {
		a := dial(t, base, "errors2", "10.0.2.4")
		a.join("a")
		b := dial(t, base, "errors2", "10.0.2.5")
		b.join("b")
		a.expect(`{"joined":"b"}`)
		b.say(strings.Repeat("x", 257))
		b.expect(`{"error":"Message too long."}`)
		b.say(strings.Repeat("😀", 129)) // 258 UTF-16 units
		b.expect(`{"error":"Message too long."}`)
		// Refused messages reach nobody: a's next frame is the message that fits.
		full := strings.Repeat("x", 256)
		b.say(full)
		a.expect(`{"name":"b","message":"` + full + `"}`)
		b.expect(`{"name":"b","message":"` + full + `"}`)
	})

	t.Run("malformed frame", func(t *testing.T) {
		c := dial(t, base, "errors3", "10.0.2.6")
		c.sendRaw("not json")
		c.expect(`{"error":"Bad message: expected a JSON object."}`)
		// The socket stays usable.
		c.join("c")
		c.sendRaw(`[1,2]`)
		c.expect(`{"error":"Bad message: expected a JSON object."}`)
	})

	t.Run("invalid UTF-8", func(t *testing.T) {
		// Sent as binary frames: the gateway closes a text frame that is not UTF-8 (1007)
		// before the room sees it. The room refuses the bytes whatever frame they came in.
		bin := func(c *client, s string) {
			t.Helper()
			if err := c.c.WriteMessage(websocket.BinaryMessage, []byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		a := dial(t, base, "errors4", "10.0.2.7")
		bin(a, "{\"name\":\"caf\xe9\"}")
		a.expect(`{"error":"Bad message: not valid UTF-8."}`)
		a.join("a") // the refused name frame named nobody
		b := dial(t, base, "errors4", "10.0.2.8")
		b.join("b")
		a.expect(`{"joined":"b"}`)
		bin(b, "{\"message\":\"\xff\xfe\"}")
		b.expect(`{"error":"Bad message: not valid UTF-8."}`)
		b.say("after")
		a.expect(`{"name":"b","message":"after"}`) // the refused message reached nobody
		// ... and was not stored: a newcomer's history has only the message that was.
		var history []string
		for _, f := range dial(t, base, "errors4", "10.0.2.9").join("c") {
			if f.Message != "" {
				history = append(history, f.Name+": "+f.Message)
			}
		}
		if len(history) != 1 || history[0] != "b: after" {
			t.Fatalf("history %q", history)
		}
	})

	t.Run("http", func(t *testing.T) {
		cases := []struct {
			method, path string
			status       int
			code         string
		}{
			{"GET", "/api/room", 405, "method_not_allowed"},
			{"GET", "/api/room/" + strings.Repeat("x", 33) + "/websocket", 404, "not_found"},
			{"GET", "/api/room/" + strings.Repeat("g", 64) + "/websocket", 404, "not_found"},
			{"GET", "/api/room/lobby/other", 404, "not_found"},
			{"GET", "/api/room/lobby", 404, "not_found"},
			{"GET", "/api/nothing", 404, "not_found"},
			{"GET", "/api/room/lobby/websocket", 400, "bad_request"},
			{"GET", "/nope.html", 404, "not_found"},
			{"POST", "/", 405, "method_not_allowed"},
		}
		for _, c := range cases {
			req, _ := http.NewRequest(c.method, base+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != c.status || e.Error.Code != c.code {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, e.Error.Code, c.status, c.code)
			}
		}
	})
}

// TestAPI: private room ids, names by hash, and the page.
func TestAPI(t *testing.T) {
	_, _, base := setup(t, runtime.Options{Namespaces: noLimits})
	resp, err := http.Post(base+"/api/room", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := string(b)
	if resp.StatusCode != 200 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("POST /api/room: %d %q", resp.StatusCode, id)
	}
	// A private id names one room however it is cased.
	a := dial(t, base, id, "10.0.3.1")
	a.join("a")
	b2 := dial(t, base, strings.ToUpper(id), "10.0.3.2")
	if got := raws(b2.join("b")); got != `{"joined":"a"} {"joined":"b"}` {
		t.Fatalf("upper-case id is another room: %s", got)
	}
	// Any characters make a room name; each name is its own room.
	c := dial(t, base, "café / ☕ 1", "10.0.3.3")
	if got := raws(c.join("c")); got != `{"joined":"c"}` {
		t.Fatalf("new named room not empty: %s", got)
	}
	if name, ok := chat.RoomObjectName("café / ☕ 1"); !ok || len(name) != 64 {
		t.Fatalf("RoomObjectName: %q %v", name, ok)
	}

	for path, ct := range map[string]string{"/": "text/html", "/chat.js": "javascript", "/style.css": "text/css", "/favicon.svg": "image/svg+xml"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ct) || len(body) == 0 {
			t.Errorf("GET %s: %d %s, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
}

const rateLimited = `{"error":"Your IP is being rate-limited, please try again later."}`

// TestRateLimit: the original's limits, per client IP and shared by all rooms: every
// frame a session may send (the name frame included) is reported to the IP's limiter,
// which lets a burst of 5 through and then asks for a wait; the session refuses frames,
// before parsing them, while its wait runs.
func TestRateLimit(t *testing.T) {
	// A 10 s interval and a 40 s window: the same burst of 5 as the defaults, and a 10 s
	// wait after it, which this test has ample time to observe.
	_, _, base := setup(t, runtime.Options{Vars: map[string]string{"CHAT_RATE_INTERVAL": "10s", "CHAT_RATE_WINDOW": "40s"}})
	b := dial(t, base, "limits", "10.0.4.2")
	b.join("b")
	a := dial(t, base, "limits", "10.0.4.1")
	a.join("a") // the name: 1 of 5
	b.expect(`{"joined":"a"}`)
	for i := range 4 { // 2 to 5
		a.sayAccepted(fmt.Sprint("burst ", i))
		b.expect(fmt.Sprintf(`{"name":"a","message":"burst %d"}`, i))
	}
	// The 5th frame's answer asks for a 10 s wait; until it came, the call was out: either
	// way the session refuses from here on.
	for range 3 {
		a.say("over the limit")
		a.expect(rateLimited)
	}
	// Before parsing: a malformed frame gets the rate-limit error, not the parse error.
	a.sendRaw("garbage")
	a.expect(rateLimited)

	// The same IP in another room shares the limiter, but a new session has no wait of its
	// own yet: its name goes through, and the limiter's answer makes it wait then.
	other := dial(t, base, "limits-2", "10.0.4.1")
	if got := raws(other.join("a2")); got != `{"joined":"a2"}` {
		t.Fatalf("a2 before ready: %s", got)
	}
	other.say("hi")
	other.expect(rateLimited)

	// Another IP is not limited, and saw none of a's refused frames: its next frame is its
	// own message.
	b.sayAccepted("hi")
	a.expect(`{"name":"b","message":"hi"}`)
}

// gatedLimiter is the RateLimiter that holds its answers to the IP held until the test
// opens gate.
type gatedLimiter struct {
	objects.Object
	st   objects.State
	held string
	gate chan struct{}
}

func (l *gatedLimiter) Fetch(w http.ResponseWriter, r *http.Request) {
	if l.st.Name() == l.held {
		<-l.gate
	}
	l.Object.Fetch(w, r)
}

// TestLimiterDoesNotBlockTheRoom: while one member's limiter call is out (its limiter is
// stuck), the other members' messages go through at once; the member itself is refused
// until the answer comes, then talks again.
func TestLimiterDoesNotBlockTheRoom(t *testing.T) {
	s := natstest.Server(t)
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	held := chat.LimiterName("10.0.7.1")
	limiters := objects.Class{Name: chat.Limiter.Name, New: func(st objects.State) objects.Object {
		return &gatedLimiter{Object: chat.Limiter.New(st), st: st, held: held, gate: gate}
	}}
	// Rooms and limiters on hosts of their own: a stuck limiter holds only its own host's
	// event loop for that object.
	startHost(t, natstest.Conn(t, s), runtime.Options{Classes: []objects.Class{chat.Room}, Vars: fastLimits})
	startHost(t, natstest.Conn(t, s), runtime.Options{Classes: []objects.Class{limiters}, Vars: fastLimits})
	base := startGateway(t, s)

	bob := dial(t, base, "unblocked", "10.0.7.2")
	bob.join("bob")
	alice := dial(t, base, "unblocked", "10.0.7.1")
	alice.join("alice") // its limiter call is out, and stays out
	bob.expect(`{"joined":"alice"}`)
	alice.say("while my limiter is stuck")
	alice.expect(rateLimited)
	for i := range 3 {
		text := fmt.Sprint("bob ", i)
		bob.sayAccepted(text)
		alice.expect(`{"name":"bob","message":"` + text + `"}`)
	}
	open()
	alice.sayAccepted("unstuck")
	bob.expect(`{"name":"alice","message":"unstuck"}`)
}

// TestSurvivesEviction: the room (and the limiter) are evicted while two members are
// connected; the next message re-activates the room with both sockets and names, and the
// history is intact.
func TestSurvivesEviction(t *testing.T) {
	_, h, base := setup(t, runtime.Options{IdleTimeout: 200 * time.Millisecond, Vars: fastLimits})
	alice := dial(t, base, "evict", "10.0.5.1")
	alice.join("alice")
	bob := dial(t, base, "evict", "10.0.5.2")
	bob.join("bob")
	alice.expect(`{"joined":"bob"}`)
	alice.sayAccepted("before")
	bob.expect(`{"name":"alice","message":"before"}`)

	for round := range 3 {
		// A room with a limiter call out is not evicted: once it is, every answer is in
		// (and the new instance starts without cooldowns), so the next frame goes through.
		natstest.WaitFor(t, "the room to be evicted", 10*time.Second, func() bool { return h.Active() == 0 })
		text := fmt.Sprint("after eviction ", round)
		bob.say(text)
		// Names come from the sockets' attachments, kept across the eviction.
		alice.expect(`{"name":"bob","message":"` + text + `"}`)
		bob.expect(`{"name":"bob","message":"` + text + `"}`)
	}
	natstest.WaitFor(t, "the room to be evicted", 10*time.Second, func() bool { return h.Active() == 0 })
	carol := dial(t, base, "evict", "10.0.5.3")
	got := regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(raws(carol.join("carol")), "")
	want := `{"joined":"alice"} {"joined":"bob"} {"name":"alice","message":"before"} {"name":"bob","message":"after eviction 0"} {"name":"bob","message":"after eviction 1"} {"name":"bob","message":"after eviction 2"} {"joined":"carol"}`
	if got != want {
		t.Fatalf("carol:\n got %s\nwant %s", got, want)
	}
	alice.expect(`{"joined":"carol"}`)
	bob.expect(`{"joined":"carol"}`)
}

// TestSurvivesHostLoss: the room's host vanishes without handing back its lease (as a
// killed process would); another host takes the room over with its sockets.
func TestSurvivesHostLoss(t *testing.T) {
	s := natstest.Server(t)
	ncA := natstest.Conn(t, s)
	startHost(t, ncA, runtime.Options{ID: "a", LeaseTTL: time.Second, Namespaces: noLimits})
	base := startGateway(t, s)
	alice := dial(t, base, "failover", "10.0.6.1")
	alice.join("alice")
	bob := dial(t, base, "failover", "10.0.6.2")
	bob.join("bob")
	alice.expect(`{"joined":"bob"}`)
	alice.say("on a")
	alice.expect(`{"name":"alice","message":"on a"}`)
	bob.expect(`{"name":"alice","message":"on a"}`)

	ncA.Close()
	startHost(t, natstest.Conn(t, s), runtime.Options{ID: "b", LeaseTTL: time.Second, Namespaces: noLimits})
	bob.say("on b")
	alice.expect(`{"name":"bob","message":"on b"}`)
	bob.expect(`{"name":"bob","message":"on b"}`)
	carol := dial(t, base, "failover", "10.0.6.3")
	got := regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(raws(carol.join("carol")), "")
	if want := `{"joined":"alice"} {"joined":"bob"} {"name":"alice","message":"on a"} {"name":"bob","message":"on b"} {"joined":"carol"}`; got != want {
		t.Fatalf("carol:\n got %s\nwant %s", got, want)
	}
}
