package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/examples/chat"
	"github.com/holdfast/holdfast/internal/natstest"
)

// chatTOML is examples/chat's config with the proxy header trusted, so that each test
// client is its own IP with its own rate limit.
const chatTOML = `
[durable_objects]
bindings = [
  { name = "rooms", class_name = "ChatRoom" },
  { name = "limiters", class_name = "RateLimiter" },
]

[[routes]]
pattern = "/"
function = "chat"

[[routes]]
pattern = "/api/"
function = "chat"

[auth]
trusted_proxy_header = "X-Forwarded-For"

[objects]
lease_ttl = "2s"
request_timeout = "15s"
`

// TestChatSurvivesHostKill: a chat room whose object host is SIGKILLed keeps every
// member connected; the next message re-activates the room on the other host with its
// sockets and names, and the history is intact.
func TestChatSurvivesHostKill(t *testing.T) {
	skipShort(t)
	c := startClusterWith(t, chatTOML, "a", "b")
	const room = "e2e-failover"
	alice := chatDial(t, c, room, "10.7.0.1")
	alice.join("alice")
	bob := chatDial(t, c, room, "10.7.0.2")
	bob.join("bob")
	alice.expect(`{"joined":"bob"}`)
	alice.sayAccepted("before the kill")
	bob.expect(`{"name":"alice","message":"before the kill"}`)

	object, _ := chat.RoomObjectName(room)
	owner := c.chatOwner(object)
	p, ok := c.hosts[owner]
	if !ok {
		t.Fatalf("room owned by %q, not one of our hosts", owner)
	}
	p.signal(t, syscall.SIGKILL)
	natstest.WaitFor(t, "the owner to die", 10*time.Second, p.exited)

	// Sent at once: the gateway holds it until the lease lapses and the other host
	// activates the room with both sockets.
	bob.say("after the kill")
	alice.expect(`{"name":"bob","message":"after the kill"}`)
	bob.expect(`{"name":"bob","message":"after the kill"}`)
	if now := c.chatOwner(object); now == owner || now == "" {
		t.Fatalf("room owner after the kill: %q", now)
	}

	carol := chatDial(t, c, room, "10.7.0.3")
	got := regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(strings.Join(carol.join("carol"), " "), "")
	want := `{"joined":"alice"} {"joined":"bob"} {"name":"alice","message":"before the kill"} {"name":"bob","message":"after the kill"} {"joined":"carol"}`
	if got != want {
		t.Fatalf("carol:\n got %s\nwant %s", got, want)
	}
	alice.expect(`{"joined":"carol"}`)
	bob.expect(`{"joined":"carol"}`)
}

// chatOwner returns the host id holding the ChatRoom object's lease, or "".
func (c *cluster) chatOwner(object string) string { return c.ownerOf(chat.Room.Name, object) }

type chatClient struct {
	t    *testing.T
	name string
	conn *websocket.Conn
}

func chatDial(t *testing.T, c *cluster, room, ip string) *chatClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(c.gwURL, "http") + "/api/room/" + room + "/websocket"
	conn, _, err := websocket.DefaultDialer.Dial(u, http.Header{"X-Forwarded-For": {ip}})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &chatClient{t: t, conn: conn}
}

func (cc *chatClient) send(v any) {
	cc.t.Helper()
	b, _ := json.Marshal(v)
	if err := cc.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		cc.t.Fatalf("%s: send: %v", cc.name, err)
	}
}

// next reads one frame; a closed socket fails the test: nobody may be disconnected.
func (cc *chatClient) next() string {
	cc.t.Helper()
	_ = cc.conn.SetReadDeadline(time.Now().Add(clientTimeout))
	_, m, err := cc.conn.ReadMessage()
	if err != nil {
		cc.t.Fatalf("%s: reading: %v", cc.name, err)
	}
	return string(m)
}

func (cc *chatClient) expect(want string) {
	cc.t.Helper()
	got := regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(cc.next(), "")
	if got != want {
		cc.t.Fatalf("%s: got %s, want %s", cc.name, got, want)
	}
}

// join sends the name frame and returns the frames before ready.
func (cc *chatClient) join(name string) []string {
	cc.t.Helper()
	cc.name = name
	cc.send(map[string]string{"name": name})
	var got []string
	for range 1000 {
		f := cc.next()
		if f == `{"ready":true}` {
			return got
		}
		got = append(got, f)
	}
	cc.t.Fatalf("%s: no ready frame", name)
	return nil
}

func (cc *chatClient) say(text string) {
	cc.t.Helper()
	cc.send(map[string]string{"message": text})
}

// sayAccepted says text until the room takes it: a session is refused while its last
// frame's rate-limiter call is out, as in the original demo, and alice speaks right after
// her name frame.
func (cc *chatClient) sayAccepted(text string) {
	cc.t.Helper()
	want := fmt.Sprintf(`{"name":%q,"message":%q}`, cc.name, text)
	for range 200 {
		cc.say(text)
		got := regexp.MustCompile(`,"timestamp":\d+`).ReplaceAllString(cc.next(), "")
		if got == want {
			return
		}
		if got != `{"error":"Your IP is being rate-limited, please try again later."}` {
			cc.t.Fatalf("%s: got %s, want %s", cc.name, got, want)
		}
	}
	cc.t.Fatalf("%s: %q refused 200 times", cc.name, text)
}
