package gateway

import (
	"strconv"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
)

// publishItems are the batch's n publishes not refused.
func publishItems(batch []pubReq, refused []error, n int) []streamapi.PublishItem {
	items := make([]streamapi.PublishItem, 0, n)
	for i, p := range batch {
		if refused[i] == nil {
			items = append(items, streamapi.PublishItem{ID: p.id, Data: p.data})
		}
	}
	return items
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
