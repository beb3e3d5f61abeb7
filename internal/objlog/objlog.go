// Package objlog owns the binary format of the records in an object's log: the deltas that
// commit one or more events' writes atomically, the snapshots that let older records be
// purged, and the epoch markers a new owner writes to fence out the previous one.
//
// A record is: kind (1 byte), then for deltas and snapshots a uvarint count of ops, each
// op being its type (1 byte), a uvarint-prefixed key and, for puts, a uvarint-prefixed
// value. An epoch record carries the new owner's host id as its only "key".
package objlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record kinds.
const (
	KindDelta    byte = 1
	KindSnapshot byte = 2
	KindEpoch    byte = 3
)

// Op types.
const (
	OpPut    byte = 1
	OpDelete byte = 2
)

// Op is one write.
type Op struct {
	Type  byte
	Key   string
	Value []byte
}

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("objlog: corrupt record")

// AppendOp appends the encoding of op to b.
func AppendOp(b []byte, op Op) []byte {
	b = append(b, op.Type)
	b = binary.AppendUvarint(b, uint64(len(op.Key)))
	b = append(b, op.Key...)
	if op.Type == OpPut {
		b = binary.AppendUvarint(b, uint64(len(op.Value)))
		b = append(b, op.Value...)
	}
	return b
}

// Encode builds a delta or snapshot record from ops.
func Encode(kind byte, ops []Op) []byte {
	n := 16
	for _, op := range ops {
		n += len(op.Key) + len(op.Value) + 12
	}
	b := make([]byte, 0, n)
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, op := range ops {
		b = AppendOp(b, op)
	}
	return b
}

// EncodeEpoch builds an epoch record naming host.
func EncodeEpoch(host string) []byte {
	return Encode(KindEpoch, []Op{{Type: OpPut, Key: host}})
}

// Decode calls fn for each op of rec and returns its kind. Values passed to fn alias rec.
func Decode(rec []byte, fn func(Op) error) (byte, error) {
	if len(rec) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	kind := rec[0]
	if kind < KindDelta || kind > KindEpoch {
		return 0, fmt.Errorf("%w: kind %d", ErrCorrupt, kind)
	}
	p := rec[1:]
	count, n := uvarint(p)
	if n <= 0 || count > uint64(len(p)) {
		return 0, fmt.Errorf("%w: op count", ErrCorrupt)
	}
	p = p[n:]
	for i := uint64(0); i < count; i++ {
		if len(p) == 0 {
			return 0, fmt.Errorf("%w: truncated at op %d", ErrCorrupt, i)
		}
		op := Op{Type: p[0]}
		if op.Type != OpPut && op.Type != OpDelete {
			return 0, fmt.Errorf("%w: op type %d", ErrCorrupt, op.Type)
		}
		p = p[1:]
		var key []byte
		var err error
		if key, p, err = chunk(p); err != nil {
			return 0, err
		}
		op.Key = string(key)
		if op.Type == OpPut {
			if op.Value, p, err = chunk(p); err != nil {
				return 0, err
			}
		}
		if err := fn(op); err != nil {
			return kind, err
		}
	}
	if len(p) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(p))
	}
	return kind, nil
}

func chunk(p []byte) ([]byte, []byte, error) {
	l, n := uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return nil, nil, fmt.Errorf("%w: length", ErrCorrupt)
	}
	return p[n : n+int(l)], p[n+int(l):], nil
}

// uvarint reads a minimally encoded uvarint, so that every record has one encoding.
func uvarint(p []byte) (uint64, int) {
	v, n := binary.Uvarint(p)
	if n > 0 && n != len(binary.AppendUvarint(nil, v)) {
		return 0, -1
	}
	return v, n
}
