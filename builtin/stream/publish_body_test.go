package stream

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// splitPublish must read every body it accepts as json's decoder does.
func TestSplitPublishLikeDecoder(t *testing.T) {
	for _, in := range []string{
		`[]`, ` [ ] `, `[{"id":"a","data":1}]`,
		`[{"id":"a","data":{"x":[1,"]}\"",{"y":null}]}},{"data":"s","id":"b"}]`,
		" [ {\n\"id\" : \"1\" , \"data\" : [ 1 , 2 ] } ,{\"id\":\"2\",\"data\":true}\t] ",
		`[{"id":"a"}]`, `[{"data":-1.5e3}]`, `[{"id":"","data":false}]`,
	} {
		got, ok := splitPublish([]byte(in))
		if !ok {
			t.Errorf("%s: not split", in)
			continue
		}
		var want []PublishItem
		if err := json.NewDecoder(strings.NewReader(in)).Decode(&want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d items, want %d", in, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || string(got[i].Data) != string(want[i].Data) {
				t.Errorf("%s: item %d: got %q %q, want %q %q", in, i, got[i].ID, got[i].Data, want[i].ID, want[i].Data)
			}
		}
	}
	// Anything else is left to the decoder.
	for _, in := range []string{
		``, `{}`, `[1]`, `[{"id":"a","data":1}`, `[{"id":"a\"b","data":1}]`, `[{"ID":"a","data":1}]`,
		`[{"id":"a","data":1,"x":2}]`, `[{"id":"a","id":"b","data":1}]`, `[{"id":1,"data":1}]`,
		`[{"id":"a","data":null}]`, `[{"id":"a","data":1}] x`, `null`,
	} {
		if got, ok := splitPublish([]byte(in)); ok {
			t.Errorf("%s: split into %v", in, got)
		}
	}
	if !reflect.DeepEqual(mustSplit(t, `[]`), []PublishItem{}) {
		t.Error("[] is not an empty batch")
	}
}

func mustSplit(t *testing.T, in string) []PublishItem {
	items, ok := splitPublish([]byte(in))
	if !ok {
		t.Fatalf("%s: not split", in)
	}
	return items
}
