package objlog

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	ops := []Op{{OpPut, "a", []byte("1")}, {OpDelete, "b", nil}, {OpPut, "", []byte{}}, {OpPut, "k", bytes.Repeat([]byte{7}, 300)}}
	rec := Encode(KindDelta, ops)
	var got []Op
	kind, err := Decode(rec, func(op Op) error { got = append(got, op); return nil })
	if err != nil || kind != KindDelta || len(got) != len(ops) {
		t.Fatalf("kind %d err %v got %d ops", kind, err, len(got))
	}
	for i := range ops {
		if got[i].Type != ops[i].Type || got[i].Key != ops[i].Key || !bytes.Equal(got[i].Value, ops[i].Value) {
			t.Fatalf("op %d: %+v != %+v", i, got[i], ops[i])
		}
	}
}

func TestCorrupt(t *testing.T) {
	good := Encode(KindSnapshot, []Op{{OpPut, "key", []byte("value")}})
	for i := 0; i < len(good); i++ {
		_, err := Decode(good[:i], func(Op) error { return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := Decode(append(good, 0), func(Op) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(KindDelta, []Op{{OpPut, "a", []byte("b")}, {OpDelete, "c", nil}}))
	f.Add(EncodeEpoch("host"))
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ops []Op
		kind, err := Decode(rec, func(op Op) error { ops = append(ops, op); return nil })
		if err != nil {
			return
		}
		// A record that decodes re-encodes to the same bytes.
		if again := Encode(kind, ops); !bytes.Equal(again, rec) {
			t.Fatalf("re-encoding differs: %x vs %x", again, rec)
		}
	})
}
