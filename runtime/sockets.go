package runtime

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
)

// socketRecord is what the object's log keeps of a socket held by a gateway.
type socketRecord struct {
	Gateway    string   `json:"g"`
	Tags       []string `json:"t,omitempty"`
	Attachment []byte   `json:"a,omitempty"`
	// Seq is the last client message the object took, so a resent one is dropped.
	Seq uint64 `json:"n,omitempty"`
}

type socket struct {
	st     *state
	id, gw string
	tags   []string
	att    []byte
	seq    uint64
	closed bool
}

// save writes the socket's record as part of the current event.
func (sk *socket) save(att []byte, seq uint64) {
	rec, _ := json.Marshal(socketRecord{Gateway: sk.gw, Tags: sk.tags, Attachment: att, Seq: seq})
	sk.st.write(socketPrefix+sk.id, rec, true)
}

func (s *sockets) st() *state { return (*state)(s) }

func (s *sockets) Accept(w http.ResponseWriter, r *http.Request, opts objects.SocketOptions) (objects.Socket, error) {
	st := s.st()
	if err := st.inEvent(); err != nil {
		return nil, err
	}
	rw, ok := w.(*responseWriter)
	id, gw := st.ev.msg.Header.Get(wire.HdrSocket), st.ev.msg.Header.Get(wire.HdrGateway)
	if !ok || id == "" || gw == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || st.ev.accepted != nil {
		return nil, objects.ErrNotUpgrade
	}
	lim := st.in.h.opts.Limits
	if len(st.sockets) >= lim.MaxSockets {
		return nil, fmt.Errorf("%w: %d", objects.ErrTooManySocket, lim.MaxSockets)
	}
	if len(opts.Attachment) > lim.MaxAttachmentBytes {
		return nil, fmt.Errorf("%w: attachment of %d bytes, the limit is %d", objects.ErrValueTooLarge, len(opts.Attachment), lim.MaxAttachmentBytes)
	}
	for _, t := range opts.Tags {
		// The registry keeps tags as JSON strings: a tag that is not UTF-8 would come back
		// altered after an eviction, and List(tag) would stop finding its socket.
		if !utf8.ValidString(t) {
			return nil, fmt.Errorf("%w: tag %q", objects.ErrInvalidUTF8, t)
		}
	}
	rec, _ := json.Marshal(socketRecord{Gateway: gw, Tags: opts.Tags, Attachment: opts.Attachment})
	st.write(socketPrefix+id, rec, true)
	sk := st.sockets[id]
	st.ev.accepted = sk
	rw.accepted = id
	return sk, nil
}

func (s *sockets) List(tag string) []objects.Socket {
	out := make([]objects.Socket, 0, len(s.sockets))
	for _, sk := range s.sockets {
		if tag == "" || slices.Contains(sk.tags, tag) {
			out = append(out, sk)
		}
	}
	slices.SortFunc(out, func(a, b objects.Socket) int { return strings.Compare(a.ID(), b.ID()) })
	return out
}

func (s *sockets) Get(id string) (objects.Socket, bool) {
	sk, ok := s.sockets[id]
	if !ok {
		return nil, false
	}
	return sk, true
}

func (s *sockets) Broadcast(tag string, data []byte, except ...string) error {
	st := s.st()
	if err := st.inEvent(); err != nil {
		return err
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: a text message", objects.ErrInvalidUTF8)
	}
	if tag == "" && len(except) == 0 {
		// Everyone: a chat room's every message. The lists are kept between events.
		if st.everyone == nil {
			byGW := map[string][]string{}
			for id, sk := range s.sockets {
				byGW[sk.gw] = append(byGW[sk.gw], id)
			}
			st.everyone = make(map[string]string, len(byGW))
			for gw, ids := range byGW {
				st.everyone[gw] = strings.Join(ids, ",")
			}
		}
		for gw, ids := range st.everyone {
			st.ev.outputs = append(st.ev.outputs, output{msg: gatewayCommandJoined(gw, wire.GwOpSend, ids, data, false)})
		}
		return nil
	}
	skip := func(id string) bool { return slices.Contains(except, id) }
	if len(except) > 8 {
		set := make(map[string]struct{}, len(except))
		for _, id := range except {
			set[id] = struct{}{}
		}
		skip = func(id string) bool { _, ok := set[id]; return ok }
	}
	byGW := map[string][]string{}
	for id, sk := range s.sockets {
		if (tag == "" || slices.Contains(sk.tags, tag)) && !skip(id) {
			byGW[sk.gw] = append(byGW[sk.gw], id)
		}
	}
	for gw, ids := range byGW {
		st.ev.outputs = append(st.ev.outputs, output{msg: gatewayCommand(gw, wire.GwOpSend, ids, data, false)})
	}
	return nil
}

func gatewayCommand(gw, op string, ids []string, data []byte, binary bool) *nats.Msg {
	return gatewayCommandJoined(gw, op, strings.Join(ids, ","), data, binary)
}

// gatewayCommandJoined is gatewayCommand for ids already joined with commas.
func gatewayCommandJoined(gw, op, ids string, data []byte, binary bool) *nats.Msg {
	m := nats.NewMsg(wire.GatewaySubject(gw))
	m.Header.Set(wire.HdrOp, op)
	m.Header.Set(wire.HdrSockets, ids)
	if binary {
		m.Header.Set(wire.HdrBinary, "1")
	}
	m.Data = slices.Clone(data)
	return m
}

func (sk *socket) ID() string         { return sk.id }
func (sk *socket) Tags() []string     { return slices.Clone(sk.tags) }
func (sk *socket) Attachment() []byte { return slices.Clone(sk.att) }

func (sk *socket) SetAttachment(b []byte) error {
	st := sk.st
	if err := st.inEvent(); err != nil {
		return err
	}
	if sk.closed {
		return objects.ErrSocketClosed
	}
	if lim := st.in.h.opts.Limits.MaxAttachmentBytes; len(b) > lim {
		return fmt.Errorf("%w: attachment of %d bytes, the limit is %d", objects.ErrValueTooLarge, len(b), lim)
	}
	sk.save(b, sk.seq)
	return nil
}

func (sk *socket) send(data []byte, binary bool) error {
	if err := sk.st.inEvent(); err != nil {
		return err
	}
	if sk.closed {
		return objects.ErrSocketClosed
	}
	if !binary && !utf8.Valid(data) {
		return fmt.Errorf("%w: a text message (SendBinary sends any bytes)", objects.ErrInvalidUTF8)
	}
	sk.st.ev.outputs = append(sk.st.ev.outputs, output{msg: gatewayCommand(sk.gw, wire.GwOpSend, []string{sk.id}, data, binary)})
	return nil
}

func (sk *socket) Send(data []byte) error       { return sk.send(data, false) }
func (sk *socket) SendBinary(data []byte) error { return sk.send(data, true) }

func (sk *socket) Close(code int, reason string) error {
	st := sk.st
	if err := st.inEvent(); err != nil {
		return err
	}
	if sk.closed {
		return nil
	}
	if code == 0 {
		code = 1000
	}
	if !utf8.ValidString(reason) {
		return fmt.Errorf("%w: a close reason", objects.ErrInvalidUTF8)
	}
	m := gatewayCommand(sk.gw, wire.GwOpClose, []string{sk.id}, nil, false)
	m.Header.Set(wire.HdrCode, strconv.Itoa(code))
	m.Header.Set(wire.HdrReason, reason)
	st.write(socketPrefix+sk.id, nil, false)
	st.ev.outputs = append(st.ev.outputs, output{msg: m})
	return nil
}
