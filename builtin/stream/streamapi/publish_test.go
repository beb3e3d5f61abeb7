package streamapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decodeReflect is DecodePublish without the fast path: json's decoder.
func decodeReflect(body []byte) ([]PublishItem, error) {
	var items []PublishItem
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&items); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, Errorf(CodeBadJSON, "trailing data")
	}
	return items, nil
}

func sameItems(a, b []PublishItem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Data, b[i].Data) ||
			(a[i].Producer == nil) != (b[i].Producer == nil) || a[i].Producer != nil && *a[i].Producer != *b[i].Producer {
			return false
		}
	}
	return true
}

// splitPublish must read every body it accepts as json's decoder does.
func TestSplitPublishLikeDecoder(t *testing.T) {
	for _, in := range []string{
		`[]`, ` [ ] `, `[{"id":"a","data":1}]`,
		`[{"id":"a","data":{"x":[1,"]}\"",{"y":null}]}},{"data":"s","id":"b"}]`,
		" [ {\n\"id\" : \"1\" , \"data\" : [ 1 , 2 ] } ,{\"id\":\"2\",\"data\":true}\t] ",
		`[{"id":"a"}]`, `[{"data":-1.5e3}]`, `[{"id":"","data":false}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":0,"seq":7}}]`,
		`[{"producer":{"seq":18446744073709551615,"id":"p q","epoch":3},"data":{},"id":"é"}]`,
	} {
		got, ok := splitPublish([]byte(in))
		if !ok {
			t.Errorf("%s: not split", in)
			continue
		}
		want, err := decodeReflect([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !sameItems(got, want) {
			t.Errorf("%s: got %+v, want %+v", in, got, want)
		}
	}
	// Anything else is left to the decoder.
	for _, in := range []string{
		``, `{}`, `[1]`, `[{"id":"a","data":1}`, `[{"id":"a\"b","data":1}]`, `[{"ID":"a","data":1}]`,
		`[{"id":"a","data":1,"x":2}]`, `[{"id":"a","id":"b","data":1}]`, `[{"id":1,"data":1}]`,
		`[{"id":"a","data":null}]`, `[{"id":"a","data":1}] x`, `null`, "[{\"id\":\"\xff\",\"data\":1}]",
		`[{"id":"a","data":1,"producer":null}]`, `[{"id":"a","data":1,"producer":{"id":"p","seq":1}}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":1.0,"seq":1}}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":-1,"seq":1}}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":1,"seq":18446744073709551616}}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":1,"seq":1,"seq":2}}]`,
	} {
		if got, ok := splitPublish([]byte(in)); ok {
			t.Errorf("%s: split into %v", in, got)
		}
	}
	if got, _ := splitPublish([]byte(`[]`)); !reflect.DeepEqual(got, []PublishItem{}) {
		t.Error("[] is not an empty batch")
	}
}

// AppendPublish writes what both readers read back as given.
func TestAppendPublishRoundTrip(t *testing.T) {
	in := []PublishItem{
		{ID: "1", Data: json.RawMessage(`{"a": [1, 2]}`)},
		{ID: `q"<&>é`, Data: json.RawMessage(`"x"`), Producer: &Producer{ID: "p-1", Epoch: 2, Seq: MaxProducerSeq}},
		{ID: "", Data: json.RawMessage(`null`)},
	}
	b := AppendPublish(nil, in)
	if want := `[{"id":"1","data":{"a":[1,2]}},{"id":"q\"\u003c\u0026\u003eé","data":"x","producer":{"id":"p-1","epoch":2,"seq":9007199254740991}},{"id":"","data":null}]`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := DecodePublish(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := decodeReflect(b)
	if !sameItems(got, want) || got[0].ID != "1" || string(got[0].Data) != `{"a":[1,2]}` || *got[1].Producer != *in[1].Producer {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := DecodePublish([]byte(`[{"id":1}]`)); err == nil || err.(*Error).Code != CodeBadJSON {
		t.Errorf("a body json cannot read: %v", err)
	}
}

// FuzzDecodePublish: DecodePublish accepts and reads exactly what json's decoder does, and
// what AppendPublish writes of it reads back the same.
func FuzzDecodePublish(f *testing.F) {
	for _, s := range []string{
		`[{"id":"a","data":{"x":[1,"]}"]}},{"data":"s","id":"b"}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":0,"seq":7}}]`,
		`[{"id":"a","data":1,"producer":{"id":"p","epoch":1.5,"seq":7}}]`,
		`[{"Id":"a","DATA":1}]`, `[]`, `[`, `{"id":"a"}`, "[{\"id\":\"\xff\",\"data\":1}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodePublish(body)
		want, werr := decodeReflect(body)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: DecodePublish error %v, json's %v", body, err, werr)
		}
		if err != nil {
			return
		}
		if !sameItems(got, want) {
			t.Fatalf("%q: got %+v, want %+v", body, got, want)
		}
		for _, it := range got {
			if !json.Valid(it.Data) {
				return // not AppendPublish's input
			}
		}
		again, err := DecodePublish(AppendPublish(nil, got))
		if err != nil {
			t.Fatalf("%q: re-encoded: %v", body, err)
		}
		for i := range got {
			var a, b bytes.Buffer
			_ = json.Compact(&a, got[i].Data)
			_ = json.Compact(&b, again[i].Data)
			if got[i].ID != again[i].ID || a.String() != b.String() {
				t.Fatalf("%q: item %d re-encoded as %+v", body, i, again[i])
			}
		}
	})
}

func BenchmarkDecodePublish(b *testing.B) {
	items := make([]PublishItem, 256)
	for i := range items {
		items[i] = PublishItem{ID: strings.Repeat("7", i%5+1), Data: json.RawMessage(`{"user":"u123","text":"hello there, a short message","n":12345}`)}
	}
	for _, c := range []struct {
		name     string
		producer bool
	}{{"plain", false}, {"producer", true}} {
		for i := range items {
			items[i].Producer = nil
			if c.producer {
				items[i].Producer = &Producer{ID: "pJ3kq9xLm2Vd8sQe", Epoch: 0, Seq: uint64(1000 + i)}
			}
		}
		body := AppendPublish(nil, items)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodePublish(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestAppendStringLikeMarshal(t *testing.T) {
	for _, s := range []string{"", "abc-123", `a"b`, `a\b`, "<&>", "é", "\x01", "\xff", "\u2028"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}
