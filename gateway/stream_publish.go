package gateway

import (
	"strconv"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// publishBody is the object's /publish body for the batch's publishes not refused.
func publishBody(batch []pubReq, refused []error, size int) []byte {
	items := make([]streamapi.PublishItem, 0, len(batch))
	for i, p := range batch {
		if refused[i] == nil {
			items = append(items, streamapi.PublishItem{ID: p.id, Data: p.data})
		}
	}
	return streamapi.AppendPublish(make([]byte, 0, size+len(batch)*24+2), items)
}

// publishedFrame is {"type":"published","id":..,"seq":N}.
func publishedFrame(id string, seq uint64) []byte {
	b := make([]byte, 0, len(id)+48)
	b = append(b, `{"type":"published","id":`...)
	b = streamapi.AppendString(b, id)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}
