package conns

// One WebSocket stack for every kind of socket: melody accepts them all (object sockets,
// /v1/stream connections, durable-stream's /stream, group members) through the client core
// (AcceptWebSocket: the session runs on a goroutine of its own and every frame the gateway
// sends goes through the connection's byte-bounded queue), and one set of melody handlers
// hands each session's events to what it serves (Session). The melody instances differ
// only in their read limit.

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// Session is what one melody session serves: an object socket, a stream connection.
type Session interface {
	// Connected runs once the upgrade is done: the connection is marked Ready.
	Connected()
	// Message is one message from the client, on the session's read loop.
	Message(data []byte, binary bool)
	// Closing records the client's close frame.
	Closing(code int, reason string)
	// Fail closes the connection with code.
	Fail(code int, reason string)
	// Disconnected runs once the session is over.
	Disconnected()
}

const sessKey = "hf.session"

func session(s *melody.Session) Session { return s.MustGet(sessKey).(Session) }

// wsWriteBuffers are gorilla's write buffers, held only for the time of one control frame
// (melody's pings and closes): the gateway's frames go through the connections' queues.
var wsWriteBuffers sync.Pool

// NewMelody is a melody for sockets whose messages may be up to maxMessage bytes. Its
// session queue carries only pings and closes (the gateway's frames go through the
// connection's queue); origins are checked before a request reaches it.
func NewMelody(maxMessage int64) *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = maxMessage
	// Pings are written by the session's ping pump itself: the queue holds at most a close
	// and melody's own close at shutdown.
	m.Config.MessageBufferSize = 4
	// Larger messages are read past the buffer; small ones (publishes, acks) fit.
	m.Upgrader = &websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 4096, WriteBufferPool: &wsWriteBuffers,
		CheckOrigin: func(*http.Request) bool { return true }}
	m.HandleConnect(func(s *melody.Session) {
		s.Request.Header = nil // read by the upgrade; the session keeps the request for good
		session(s).Connected()
	})
	m.HandleMessage(func(s *melody.Session, data []byte) { session(s).Message(data, false) })
	m.HandleMessageBinary(func(s *melody.Session, data []byte) { session(s).Message(data, true) })
	m.HandleClose(func(s *melody.Session, code int, reason string) error {
		session(s).Closing(code, reason)
		// Answer the close frame as gorilla's own handler does.
		msg := []byte{}
		if code != websocket.CloseNoStatusReceived {
			msg = websocket.FormatCloseMessage(code, "")
		}
		_ = s.WebsocketConnection().WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		return nil
	})
	m.HandleError(func(s *melody.Session, err error) {
		// Only pings and closes go through melody's queue; a full one still means a
		// client that does not read. It may be called from a close already holding a
		// lock of the session's, hence the goroutine.
		if errors.Is(err, melody.ErrMessageBufferFull) {
			go session(s).Fail(CloseSlowConsumer, SlowConsumerReason)
		}
	})
	m.HandleDisconnect(func(s *melody.Session) { session(s).Disconnected() })
	return m
}
