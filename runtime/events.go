package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/internal/httperr"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats.go"
)

// maxAlarmRetries bounds how often a failing alarm handler is retried.
const maxAlarmRetries = 6

// opLabels name the ops in the events metric (any other op is refused, and not counted).
var opLabels = map[string]string{wire.OpFetch: "fetch", wire.OpSocketMsg: "socket_message", wire.OpSocketClose: "socket_close", wire.OpAlarm: "alarm"}

// handle runs one event to completion.
func (in *instance) handle(ev event) {
	if ev.call != nil {
		in.handleCallDone(ev.call)
		return
	}
	if ev.gatewayLost != "" {
		in.closeSockets(func(sk *socket) bool { return sk.gw == ev.gatewayLost }, 1006, "gateway lost")
		return
	}
	m := ev.msg
	op := m.Header.Get(wire.HdrOp)
	if label, ok := opLabels[op]; ok {
		in.h.metrics.Events.WithLabelValues(in.class, label).Inc()
	}
	switch op {
	case wire.OpFetch:
		in.handleFetch(m)
	case wire.OpSocketMsg:
		in.handleSocketMessage(m)
	case wire.OpSocketClose:
		in.handleSocketClose(m)
	case wire.OpAlarm:
		// The wake-up itself was the point: the instance's own timer fires the alarm.
		respond(m, wire.EncodeResponse(http.StatusNoContent, nil, nil))
	default:
		respond(m, wire.ErrorReply(wire.ErrBadRequest, "unknown op "+m.Header.Get(wire.HdrOp)))
	}
}

// finishEvent ends the current event, attaching reply to m as its last output.
func (in *instance) finishEvent(ok bool, m *nats.Msg, reply *nats.Msg) {
	st := in.st
	if ok && reply != nil {
		st.ev.outputs = append(st.ev.outputs, output{reply: m, msg: reply})
	}
	if kept := st.end(ok); !kept && reply != nil {
		if ok {
			reply = objectError(fmt.Errorf("the event wrote more than %d bytes; nothing was written", in.h.opts.Limits.MaxEventBytes))
		}
		// An event that failed wrote nothing, but an earlier event's writes may still be in
		// flight and this reply may say what it saw: it waits for them too.
		in.open.outputs = append(in.open.outputs, output{reply: m, msg: reply})
	}
}

func (in *instance) handleFetch(m *nats.Msg) {
	req, err := wire.DecodeRequest(m)
	if err != nil {
		respond(m, wire.ErrorReply(wire.ErrBadRequest, err.Error()))
		return
	}
	req = req.WithContext(in.h.ctx)
	rw := &responseWriter{header: http.Header{}, limit: in.h.opts.Limits.MaxResponseBytes}
	in.st.begin(m)
	err = in.st.protect(func() { in.obj.Fetch(rw, req) })
	if err == nil && rw.overflow {
		err = fmt.Errorf("response larger than %d bytes", rw.limit)
	}
	if err != nil {
		in.finishEvent(false, m, objectError(err))
		return
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	reply := wire.EncodeResponse(status, rw.header, rw.buf.Bytes())
	if rw.accepted != "" {
		reply.Header.Set(wire.HdrAccept, rw.accepted)
	}
	in.finishEvent(true, m, reply)
}

func objectError(err error) *nats.Msg {
	// json.Marshal, not %q: a Go-quoted message is not always a JSON string (\x.. escapes,
	// bytes that are not UTF-8).
	body, _ := json.Marshal(httperr.Body{Error: httperr.Detail{Code: httperr.CodeObjectError, Message: err.Error()}})
	h := http.Header{"Content-Type": {"application/json"}}
	return wire.EncodeResponse(http.StatusInternalServerError, h, body)
}

func (in *instance) handleSocketMessage(m *nats.Msg) {
	id := m.Header.Get(wire.HdrSocket)
	sk := in.st.sockets[id]
	if sk == nil {
		respond(m, wire.ErrorReply(wire.ErrBadRequest, "unknown socket "+id))
		return
	}
	ok := wire.EncodeResponse(http.StatusNoContent, nil, nil)
	seq, _ := strconv.ParseUint(m.Header.Get(wire.HdrSeq), 10, 64)
	if seq != 0 && seq <= sk.seq {
		// A gateway resent a message this object already took (its answer was lost in a
		// failover). It waits for the commit that took it, like any reply.
		in.open.outputs = append(in.open.outputs, output{reply: m, msg: ok})
		return
	}
	sh, isHandler := in.obj.(objects.SocketHandler)
	in.st.begin(m)
	var err error
	if isHandler {
		msg := objects.Message{Data: m.Data, Binary: m.Header.Get(wire.HdrBinary) == "1"}
		var herr error
		err = in.st.protect(func() { herr = sh.SocketMessage(in.h.ctx, sk, msg) })
		if err == nil && herr != nil {
			err = herr
			in.logger().Warn("socket message handler failed; its writes are undone", "err", err)
		}
	}
	if err != nil {
		in.st.end(false)
		in.st.begin(m)
	}
	// The message was taken (even if the handler refused it): remember its number.
	if seq != 0 && !sk.closed {
		sk.save(sk.att, seq)
	}
	in.finishEvent(true, m, ok)
}

func (in *instance) handleSocketClose(m *nats.Msg) {
	id := m.Header.Get(wire.HdrSocket)
	code, _ := strconv.Atoi(m.Header.Get(wire.HdrCode))
	sk := in.st.sockets[id]
	done := wire.EncodeResponse(http.StatusNoContent, nil, nil)
	if sk == nil {
		respond(m, done) // closed already, by the object or earlier
		return
	}
	in.closeSockets(func(s *socket) bool { return s == sk }, code, m.Header.Get(wire.HdrReason))
	in.open.outputs = append(in.open.outputs, output{reply: m, msg: done})
}

// closeSockets removes the matching sockets from the registry and runs the close handler
// for each, as one event.
func (in *instance) closeSockets(match func(*socket) bool, code int, reason string) {
	var gone []*socket
	for _, sk := range in.st.sockets {
		if match(sk) {
			gone = append(gone, sk)
		}
	}
	if len(gone) == 0 {
		return
	}
	sh, _ := in.obj.(objects.SocketHandler)
	for _, sk := range gone {
		in.st.begin(nil)
		in.st.write(socketPrefix+sk.id, nil, false)
		var herr error
		err := in.st.protect(func() {
			if sh != nil {
				herr = sh.SocketClose(in.h.ctx, sk, code, reason)
			}
		})
		if err != nil || herr != nil {
			// The socket is gone whatever the handler did: undo the handler's writes only.
			in.st.end(false)
			in.st.begin(nil)
			in.st.write(socketPrefix+sk.id, nil, false)
		}
		in.st.end(true)
	}
}

func (in *instance) closeDeadGatewaySockets() {
	in.closeSockets(func(sk *socket) bool { return !in.h.gateways.isLive(sk.gw) }, 1006, "gateway lost")
}

func (in *instance) resetAlarmTimer(t *time.Timer) {
	t.Stop()
	if in.st.alarmAt == 0 {
		return
	}
	d := time.Until(time.UnixMilli(in.st.alarmAt))
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}

// fireAlarm runs the alarm handler once it is due. On success the alarm is cleared unless
// the handler set a new one; on failure it is retried with exponential backoff.
func (in *instance) fireAlarm() {
	st := in.st
	at := st.alarmAt
	if at == 0 || time.Now().UnixMilli() < at {
		return
	}
	retries := st.retries
	ah, ok := in.obj.(objects.AlarmHandler)
	st.begin(nil)
	var herr error
	err := st.protect(func() {
		if ok {
			herr = ah.Alarm(in.h.ctx, objects.AlarmInfo{Scheduled: time.UnixMilli(at), RetryCount: retries})
		}
	})
	if err == nil {
		err = herr
	}
	if err == nil {
		if st.alarmAt == at && st.retries == retries {
			_ = (*alarm)(st).Delete()
		}
		st.end(true)
		in.h.metrics.Alarms.WithLabelValues(in.class, metrics.AlarmOK).Inc()
		return
	}
	st.end(false)
	st.begin(nil)
	if retries+1 >= maxAlarmRetries {
		in.h.metrics.Alarms.WithLabelValues(in.class, metrics.AlarmDropped).Inc()
		in.logger().Error("alarm failed too often; dropped", "err", err)
		_ = (*alarm)(st).Delete()
	} else {
		backoff := time.Duration(1<<retries) * time.Second
		in.h.metrics.Alarms.WithLabelValues(in.class, metrics.AlarmRetry).Inc()
		in.logger().Warn("alarm failed; retrying", "in", backoff, "err", err)
		_ = st.setAlarm(time.Now().Add(backoff).UnixMilli(), retries+1)
	}
	st.end(true)
}

// responseWriter buffers an object's response: it may leave only after the commit.
type responseWriter struct {
	header   http.Header
	status   int
	buf      bytes.Buffer
	limit    int
	overflow bool
	accepted string
}

func (w *responseWriter) Header() http.Header { return w.header }
func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.buf.Len()+len(p) > w.limit {
		w.overflow = true
		return 0, fmt.Errorf("response larger than %d bytes", w.limit)
	}
	return w.buf.Write(p)
}
