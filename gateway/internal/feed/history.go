package feed

// Reading the log behind the ring: one JetStream batched direct get (nats-server 2.11+,
// JSApiMsgGetRequest.Batch) asks for up to a batch of messages from a seq on, and the
// server streams them to an inbox followed by an end-of-batch marker. nats.go v1.55 has no
// call for it, so the request is made here. A direct get may be answered by any replica,
// which may lag the stream's leader by the last few messages: a batch that ends short of
// what the feed knows is stored is checked with the leader (a message get by subject)
// before the rest counts as deleted.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// fetchMax bounds the messages of one batched read; fetchBytes their size (the server
	// stops after the message that passes it).
	fetchMax   = 512
	fetchBytes = 1 << 20
	// fetchTimeout bounds one batched read when the caller's context has no deadline.
	fetchTimeout = 10 * time.Second
)

// ErrHistory is returned (wrapped) when the log could not be read.
var ErrHistory = errors.New("reading the stream's log failed")

type directGet struct {
	Seq      uint64 `json:"seq"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// logRef names one stream's log for reading it: a feed's, or a read without one
// (Hub.ReadLog).
type logRef struct {
	hub             *Hub
	name            string
	stream, subject string
}

// ReadLog reads up to max messages of name's log with seqs in [from, upTo], in order, as
// Feed.ReadRange does: from the stream's feed when one runs here (its ring, then the log),
// else from the log in one batched read, without starting a feed. next is the seq to read
// from next.
func (h *Hub) ReadLog(ctx context.Context, name string, from, upTo uint64, max int) (msgs []*Msg, next uint64, err error) {
	if f := h.Running(name); f != nil {
		return f.ReadRange(ctx, from, upTo, max)
	}
	stream, subject := h.cfg.Log(name)
	l := &logRef{hub: h, name: name, stream: stream, subject: subject}
	return l.fetch(ctx, from, upTo, max)
}

// fetch reads up to max messages with seqs in [from, upTo] from the log; next is the seq
// after the range read (upTo+1 when it reached the end of the range).
func (f *logRef) fetch(ctx context.Context, from, upTo uint64, max int) ([]*Msg, uint64, error) {
	if from > upTo || max <= 0 {
		return nil, from, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
	}
	max = min(max, fetchMax)
	msgs, past, err := f.directBatch(ctx, from, upTo, max)
	if err != nil {
		return nil, from, err
	}
	next := from
	if len(msgs) > 0 {
		next = msgs[len(msgs)-1].Seq + 1
	}
	if past {
		return msgs, upTo + 1, nil // the batch went past the range: nothing else is in it
	}
	if len(msgs) == max || next > upTo {
		return msgs, next, nil
	}
	// Short of the range: deleted messages, or a replica that lags. The leader knows.
	m, err := f.leaderNext(ctx, next)
	if err != nil {
		return nil, from, err
	}
	if m == nil || m.Seq > upTo {
		return msgs, upTo + 1, nil
	}
	return append(msgs, m), m.Seq + 1, nil
}

// directBatch is one batched direct get of the messages in [from, upTo]; past reports
// that the answer went beyond upTo (the server does not stop at it by itself), so that
// everything stored in the range was read.
func (f *logRef) directBatch(ctx context.Context, from, upTo uint64, max int) (out []*Msg, past bool, err error) {
	nc := f.hub.cfg.Conn
	batch := int(min(uint64(max), upTo-from+1))
	inbox := nc.NewInbox() // under the connection's inbox prefix: NATS permissions allow only that
	// A channel just large enough for the batch and its end marker (a SubscribeSync's
	// holds 65,536 pending messages: half a megabyte per read in flight).
	ch := make(chan *nats.Msg, batch+2)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrHistory, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, _ := json.Marshal(directGet{Seq: from, Batch: batch, MaxBytes: fetchBytes})
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+f.stream, inbox, body); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrHistory, err)
	}
	for {
		var rm *nats.Msg
		select {
		case rm = <-ch:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("%w: %v", ErrHistory, ctx.Err())
		}
		switch rm.Header.Get("Status") {
		case "":
		case "204": // end of the batch
			return out, false, nil
		case "404": // nothing from there on
			return out, false, nil
		default:
			return nil, false, fmt.Errorf("%w: %s %s", ErrHistory, rm.Header.Get("Status"), rm.Header.Get("Description"))
		}
		m, err := f.stored(rm.Header, rm.Data)
		if err != nil {
			return nil, false, err
		}
		if m.Seq > upTo {
			return out, true, nil
		}
		out = append(out, m)
		if len(out) >= max {
			// The end-of-batch marker follows; nothing else is needed from it.
			return out, false, nil
		}
	}
}

// stored builds a message from a direct get's answer: JetStream's headers say where it
// is stored, the others are its own.
func (f *logRef) stored(h nats.Header, data []byte) (*Msg, error) {
	seq, err := strconv.ParseUint(h.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: a message without its seq", ErrHistory)
	}
	t, _ := time.Parse(time.RFC3339Nano, h.Get("Nats-Time-Stamp"))
	m := &Msg{Stream: f.name, Seq: seq, Time: t, Data: data}
	for k, vs := range h {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header[k] = vs
	}
	return m, nil
}

// leaderNext is the first message at or after seq, asked of the stream's leader (nil when
// there is none).
func (f *logRef) leaderNext(ctx context.Context, seq uint64) (*Msg, error) {
	body, _ := json.Marshal(map[string]any{"seq": seq, "next_by_subj": f.subject})
	rm, err := f.hub.cfg.Conn.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+f.stream, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHistory, err)
	}
	var res struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq  uint64    `json:"seq"`
			Hdrs []byte    `json:"hdrs"`
			Data []byte    `json:"data"`
			Time time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(rm.Data, &res); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHistory, err)
	}
	if res.Error != nil {
		if res.Error.Code == 404 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrHistory, res.Error.Description)
	}
	if res.Message == nil {
		return nil, nil
	}
	m := &Msg{Stream: f.name, Seq: res.Message.Seq, Time: res.Message.Time, Data: res.Message.Data}
	if len(res.Message.Hdrs) > 0 {
		if h, err := decodeHeader(res.Message.Hdrs); err == nil && len(h) > 0 {
			m.Header = h
		}
	}
	return m, nil
}

// decodeHeader parses a NATS header block ("NATS/1.0\r\nK: V\r\n...\r\n\r\n").
func decodeHeader(b []byte) (nats.Header, error) {
	lines := strings.Split(string(b), "\r\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NATS/1.0") {
		return nil, fmt.Errorf("%w: a malformed header", ErrHistory)
	}
	h := nats.Header{}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}
