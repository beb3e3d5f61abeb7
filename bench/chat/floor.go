package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"
)

// floor is the benchmark's floor: the chat protocol on a bare melody broadcast server,
// with no storage, no rate limiter, no NATS and no objects: a room is a set of sessions
// behind a mutex, and a message is one json.Marshal and one melody Write per member. It
// speaks the frames the load generator reads (name → joined ... ready, message →
// {"name","message","timestamp"} to every named member, the sender included), so the
// same clients measure it the same way; the difference to Holdfast is what durability,
// the object model and the gateway↔host hops cost.
type floor struct {
	m     *melody.Melody
	mu    sync.Mutex
	rooms map[string]*floorRoom
	// dropped counts frames melody dropped for a full session buffer.
	dropped atomic.Int64
}

type floorRoom struct {
	mu      sync.Mutex
	members map[*melody.Session]string // name, "" until the name frame
	last    int64
}

func startFloor() (base string, stop func(), f *floor, err error) {
	f = &floor{m: melody.New(), rooms: map[string]*floorRoom{}}
	// melody's defaults but for the message size: the load's frames are small either way.
	f.m.Config.MaxMessageSize = 64 << 10
	f.m.HandleError(func(s *melody.Session, err error) {
		if errors.Is(err, melody.ErrMessageBufferFull) {
			f.dropped.Add(1)
		}
	})
	f.m.HandleConnect(func(s *melody.Session) {
		r := f.room(s.Request.PathValue("room"))
		r.mu.Lock()
		r.members[s] = ""
		r.mu.Unlock()
		s.Set("room", r)
	})
	f.m.HandleDisconnect(func(s *melody.Session) {
		r := sessionRoom(s)
		r.mu.Lock()
		name := r.members[s]
		delete(r.members, s)
		if name != "" {
			r.broadcast(mustJSON(map[string]string{"quit": name}))
		}
		r.mu.Unlock()
	})
	f.m.HandleMessage(func(s *melody.Session, data []byte) { sessionRoom(s).handle(s, data) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/room/{room}/websocket", func(w http.ResponseWriter, r *http.Request) {
		_ = f.m.HandleRequest(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "ws://" + ln.Addr().String(), func() { _ = f.m.Close(); _ = srv.Close() }, f, nil
}

func (f *floor) room(name string) *floorRoom {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rooms[name]
	if r == nil {
		r = &floorRoom{members: map[*melody.Session]string{}}
		f.rooms[name] = r
	}
	return r
}

func sessionRoom(s *melody.Session) *floorRoom {
	r, _ := s.Get("room")
	return r.(*floorRoom)
}

// handle is the room's protocol, under the room's lock so that every member sees one order.
func (r *floorRoom) handle(s *melody.Session, data []byte) {
	var frame struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &frame) != nil {
		_ = s.Write(mustJSON(map[string]string{"error": "Bad message: expected a JSON object."}))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[s] == "" {
		name := strings.TrimSpace(frame.Name)
		if name == "" {
			name = "anonymous"
		}
		for o, n := range r.members {
			if o != s && n != "" {
				_ = s.Write(mustJSON(map[string]string{"joined": n}))
			}
		}
		r.members[s] = name
		r.broadcast(mustJSON(map[string]string{"joined": name}))
		_ = s.Write(mustJSON(map[string]bool{"ready": true}))
		return
	}
	ts := max(time.Now().UnixMilli(), r.last+1)
	r.last = ts
	r.broadcast(mustJSON(struct {
		Name      string `json:"name"`
		Message   string `json:"message"`
		Timestamp int64  `json:"timestamp"`
	}{r.members[s], frame.Message, ts}))
}

// broadcast writes msg to every named member; the caller holds r.mu.
func (r *floorRoom) broadcast(msg []byte) {
	for o, n := range r.members {
		if n != "" {
			_ = o.Write(msg)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
