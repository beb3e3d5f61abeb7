package runtime

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/internal/objlog"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
)

// Reserved storage keys: the runtime keeps its own records (sockets, the alarm) in the
// object's log beside the user's keys, so they commit atomically with them.
const (
	reservedPrefix = "\x00"
	socketPrefix   = "\x00s/"
	alarmKey       = "\x00a"
	maxKeyBytes    = 2048
)

// state is an instance's in-memory view of its log plus the event being run. It
// implements objects.State, Storage, Alarm and Sockets.
type state struct {
	in      *instance
	data    map[string][]byte
	keys    []string // sorted; nil when stale
	bytes   int
	sockets map[string]*socket
	// everyone is Broadcast's list of all sockets' ids by gateway, joined for the
	// command's header; nil when a socket came, went or moved since it was made.
	everyone map[string]string
	alarmAt  int64 // unix ms; 0 = none
	retries  int
	ev       *evctx
}

// evctx collects what one event does, so that it can be committed or undone whole.
type evctx struct {
	msg          *nats.Msg
	ops          []objlog.Op
	undo         []undoRec
	outputs      []output
	alarmChanged bool
	accepted     *socket
	bytes        int // of ops
	log          *logChange
	// the log's counters before the event, to undo it
	logFirst uint64
	logCfg   objects.LogConfig
}

type undoRec struct {
	key     string
	old     []byte
	existed bool
}

var (
	_ objects.State   = (*state)(nil)
	_ objects.Storage = (*storage)(nil)
	_ objects.Alarm   = (*alarm)(nil)
	_ objects.Sockets = (*sockets)(nil)
	_ objects.Socket  = (*socket)(nil)
)

type (
	storage state
	alarm   state
	sockets state
)

func newState(in *instance) *state {
	s := &state{in: in}
	s.reset()
	return s
}

func (s *state) reset() {
	s.data, s.keys, s.bytes = map[string][]byte{}, nil, 0
	s.sockets, s.everyone, s.alarmAt, s.retries = map[string]*socket{}, nil, 0, 0
}

func (s *state) Class() string            { return s.in.class }
func (s *state) Name() string             { return s.in.name }
func (s *state) Storage() objects.Storage { return (*storage)(s) }
func (s *state) Alarm() objects.Alarm     { return (*alarm)(s) }
func (s *state) Sockets() objects.Sockets { return (*sockets)(s) }
func (s *state) Var(name string) (string, bool) {
	v, ok := s.in.h.opts.Vars[name]
	return v, ok
}

// set changes one key in memory and the caches derived from reserved keys. It records
// nothing: write and the undo path call it.
func (s *state) set(key string, val []byte, present bool) {
	old, existed := s.data[key]
	if existed {
		s.bytes -= len(key) + len(old)
	}
	if present {
		s.data[key] = val
		s.bytes += len(key) + len(val)
		if !existed {
			s.keys = nil
		}
	} else if existed {
		delete(s.data, key)
		s.keys = nil
	}
	switch {
	case strings.HasPrefix(key, socketPrefix):
		id := key[len(socketPrefix):]
		if !present {
			if sk := s.sockets[id]; sk != nil {
				sk.closed = true
			}
			delete(s.sockets, id)
			s.everyone = nil
			return
		}
		sk := s.sockets[id]
		if sk == nil {
			sk = &socket{st: s, id: id}
			s.everyone = nil
		}
		sk.closed = false
		var rec socketRecord
		if json.Unmarshal(val, &rec) == nil {
			if rec.Gateway != sk.gw {
				s.everyone = nil
			}
			sk.gw, sk.tags, sk.att, sk.seq = rec.Gateway, rec.Tags, rec.Attachment, rec.Seq
		}
		s.sockets[id] = sk
	case key == alarmKey:
		s.alarmAt, s.retries = 0, 0
		if present && len(val) == 12 {
			s.alarmAt = int64(binary.BigEndian.Uint64(val))
			s.retries = int(binary.BigEndian.Uint32(val[8:]))
		}
	}
}

// write changes a key as part of the current event.
func (s *state) write(key string, val []byte, present bool) {
	old, existed := s.data[key]
	s.ev.undo = append(s.ev.undo, undoRec{key, old, existed})
	s.ev.bytes += len(key) + len(val) + 4
	if present {
		val = slices.Clone(val)
		if val == nil {
			val = []byte{}
		}
		s.ev.ops = append(s.ev.ops, objlog.Op{Type: objlog.OpPut, Key: key, Value: val})
	} else {
		s.ev.ops = append(s.ev.ops, objlog.Op{Type: objlog.OpDelete, Key: key})
	}
	s.set(key, val, present)
}

// applyRecord replays one log record during activation.
func (s *state) applyRecord(rec []byte) error {
	if len(rec) > 0 && rec[0] == objlog.KindEpoch {
		// An owner's marker, not a write: its one op names the host. Applied, it put a
		// key named after every earlier owner into the object's storage (found by the
		// fault harness: a Counter's snapshot held "h3" beside "value").
		_, err := objlog.Decode(rec, func(objlog.Op) error { return nil })
		return err
	}
	first := true
	_, err := objlog.Decode(rec, func(op objlog.Op) error {
		if first && rec[0] == objlog.KindSnapshot {
			s.reset()
		}
		first = false
		s.set(op.Key, slices.Clone(op.Value), op.Type == objlog.OpPut)
		return nil
	})
	if err == nil && first && rec[0] == objlog.KindSnapshot {
		s.reset() // an empty snapshot
	}
	return err
}

// snapshot encodes the whole state as one record.
func (s *state) snapshot() []byte {
	ops := make([]objlog.Op, 0, len(s.data))
	for _, k := range s.sortedKeys() {
		ops = append(ops, objlog.Op{Type: objlog.OpPut, Key: k, Value: s.data[k]})
	}
	return objlog.Encode(objlog.KindSnapshot, ops)
}

func (s *state) sortedKeys() []string {
	if s.keys == nil {
		s.keys = make([]string, 0, len(s.data))
		for k := range s.data {
			s.keys = append(s.keys, k)
		}
		sort.Strings(s.keys)
	}
	return s.keys
}

// begin starts an event; end commits it into the open batch or, when ok is false (or the
// event wrote more than one record may hold), undoes everything it did. It reports whether
// the event was kept.
func (s *state) begin(m *nats.Msg) {
	s.ev = &evctx{msg: m}
	if l := s.in.log; l != nil {
		s.ev.logFirst, s.ev.logCfg = l.first, l.cfg
	}
}

func (s *state) end(ok bool) bool {
	ev := s.ev
	s.ev = nil
	if ok && ev.bytes > s.in.h.opts.Limits.MaxEventBytes {
		// One record must hold the whole event: refuse it rather than fail the commit.
		s.in.logger().Warn("event wrote too much; undone", "bytes", ev.bytes)
		ok = false
	}
	if !ok {
		for i := len(ev.undo) - 1; i >= 0; i-- {
			u := ev.undo[i]
			s.set(u.key, u.old, u.existed)
		}
		if !ev.log.empty() {
			s.in.log.undo(ev.log, ev.logFirst, ev.logCfg)
		}
		return false
	}
	b := s.in.open
	for _, op := range ev.ops {
		b.ops = append(b.ops, op)
		b.opBytes += len(op.Key) + len(op.Value) + 4
	}
	b.outputs = append(b.outputs, ev.outputs...)
	if !ev.log.empty() {
		if b.log == nil {
			b.log = &logChange{}
		}
		b.log.merge(ev.log)
		b.opBytes += ev.bytes
	}
	if ev.alarmChanged {
		at := s.alarmAt
		b.alarm = &at
	}
	return true
}

// protect runs fn, turning a panic into an error.
func (s *state) protect(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
			s.in.logger().Error("object handler panicked", "panic", r)
		}
	}()
	fn()
	return nil
}

func (s *state) inEvent() error {
	if s.ev == nil {
		return fmt.Errorf("objects: state used outside of the object's handlers")
	}
	return nil
}

// --- Storage ---

func (st *storage) s() *state { return (*state)(st) }

func (st *storage) Get(key string) ([]byte, bool) {
	if strings.HasPrefix(key, reservedPrefix) {
		return nil, false
	}
	v, ok := st.data[key]
	return slices.Clone(v), ok
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, reservedPrefix) || len(key) > maxKeyBytes || !utf8.ValidString(key) {
		return fmt.Errorf("%w: keys are 1 to %d bytes of UTF-8 not starting with NUL", objects.ErrBadKey, maxKeyBytes)
	}
	return nil
}

func (st *storage) Put(key string, value []byte) error {
	s := st.s()
	if err := s.inEvent(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	lim := s.in.h.opts.Limits
	if len(value) > lim.MaxValueBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", objects.ErrValueTooLarge, len(value), lim.MaxValueBytes)
	}
	grow := len(key) + len(value)
	if old, ok := s.data[key]; ok {
		grow -= len(key) + len(old)
	}
	if s.bytes+grow > lim.MaxStorageBytes {
		return fmt.Errorf("%w: %d bytes would exceed %d", objects.ErrStorageFull, s.bytes+grow, lim.MaxStorageBytes)
	}
	s.write(key, value, true)
	return nil
}

func (st *storage) Delete(key string) error {
	s := st.s()
	if err := s.inEvent(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if _, ok := s.data[key]; ok {
		s.write(key, nil, false)
	}
	return nil
}

func (st *storage) List(prefix, startAfter string, limit int) []objects.Entry {
	keys := st.s().sortedKeys()
	from := prefix
	if startAfter > from {
		from = startAfter
	}
	i := sort.SearchStrings(keys, from)
	var out []objects.Entry
	for ; i < len(keys); i++ {
		k := keys[i]
		if k == startAfter {
			continue
		}
		if !strings.HasPrefix(k, prefix) {
			break
		}
		if strings.HasPrefix(k, reservedPrefix) {
			continue
		}
		out = append(out, objects.Entry{Key: k, Value: slices.Clone(st.data[k])})
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

func (st *storage) Bytes() int { return st.bytes }

// --- Alarm ---

func encodeMillis(ms int64) []byte { return []byte(fmt.Sprint(ms)) }

func (a *alarm) s() *state { return (*state)(a) }

func (a *alarm) Get() (time.Time, bool) {
	if a.alarmAt == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(a.alarmAt), true
}

func (a *alarm) Set(at time.Time) error {
	return a.s().setAlarm(at.UnixMilli(), 0)
}

func (a *alarm) Delete() error {
	s := a.s()
	if err := s.inEvent(); err != nil {
		return err
	}
	if s.alarmAt != 0 {
		s.write(alarmKey, nil, false)
		s.ev.alarmChanged = true
	}
	return nil
}

func (s *state) setAlarm(ms int64, retries int) error {
	if err := s.inEvent(); err != nil {
		return err
	}
	if ms <= 0 {
		ms = 1
	}
	v := make([]byte, 12)
	binary.BigEndian.PutUint64(v, uint64(ms))
	binary.BigEndian.PutUint32(v[8:], uint32(retries))
	s.write(alarmKey, v, true)
	s.ev.alarmChanged = true
	return nil
}
