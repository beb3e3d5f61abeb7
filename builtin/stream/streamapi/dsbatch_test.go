package streamapi

import (
	"bytes"
	"strings"
	"testing"
)

func TestDSBatchFraming(t *testing.T) {
	in := []DSAppend{
		{ContentType: "application/octet-stream", Data: []byte("a\nb\x00c")},
		{Closed: true},
		{ContentType: "application/json", Data: []byte(`[1,2]`), Batch: 2, Producer: &Producer{ID: "p", Epoch: 1, Seq: 2}, StreamSeq: "7"},
	}
	b, err := EncodeDSBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeDSBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d appends back, want %d", len(out), len(in))
	}
	for i := range in {
		a, o := in[i], out[i]
		if !bytes.Equal(a.Data, o.Data) || a.ContentType != o.ContentType || a.Closed != o.Closed || a.Batch != o.Batch || a.StreamSeq != o.StreamSeq ||
			(a.Producer == nil) != (o.Producer == nil) || a.Producer != nil && *a.Producer != *o.Producer {
			t.Errorf("append %d: %+v back as %+v", i, a, o)
		}
	}
	bad := map[string]string{
		"no head line":   `[{"len":1}]`,
		"no appends":     "[]\n",
		"beyond the end": `[{"len":5}]` + "\nabc",
		"trailing bytes": `[{"len":1}]` + "\nab",
		"negative":       `[{"len":-1}]` + "\n",
		"not JSON":       "{\nx",
		"too many":       "[" + strings.Repeat(`{"len":0},`, MaxBatch) + `{"len":0}]` + "\n",
	}
	for name, body := range bad {
		if _, err := DecodeDSBatch([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
