// Package counter is the smallest Holdfast object: a durable counter per name, written
// only against the public SDK. POST increments and answers {"name","value"}; GET answers
// the same without incrementing.
//
// It proves single activation, durable storage and failover: every increment answered
// with 200 is counted exactly once, whatever happens to hosts.
package counter

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/holdfast/holdfast/objects"
)

// Class registers the Counter class.
var Class = objects.Class{Name: "Counter", New: New}

// Counter holds one count.
type Counter struct {
	st    objects.State
	value int64
}

// New loads the count from storage.
func New(st objects.State) objects.Object {
	c := &Counter{st: st}
	if v, ok := st.Storage().Get("value"); ok {
		c.value, _ = strconv.ParseInt(string(v), 10, 64)
	}
	return c
}

// Fetch increments on POST and reports on GET.
func (c *Counter) Fetch(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		next := c.value + 1
		if err := c.st.Storage().Put("value", strconv.AppendInt(nil, next, 10)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		c.value = next
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":{"code":"method_not_allowed","message":"use GET or POST"}}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Name  string `json:"name"`
		Value int64  `json:"value"`
	}{c.st.Name(), c.value})
}
