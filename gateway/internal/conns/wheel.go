package conns

import (
	"sync"
	"time"
)

// heartbeatEvent is the comment line an idle event stream gets.
var heartbeatEvent = []byte(": heartbeat\n\n")

// wheel sends each registered event stream a heartbeat when it sent nothing for a
// period, from one goroutine that runs while any is registered: connections are spread
// over slots, one slot per tick, instead of a ticker each.
type wheel struct {
	period time.Duration
	mu     sync.Mutex
	slots  []map[*Conn]struct{}
	cur    int
	n      int
	ticks  bool // the goroutine runs
}

const wheelSlots = 16

func newWheel(period time.Duration) *wheel {
	w := &wheel{period: period, slots: make([]map[*Conn]struct{}, wheelSlots)}
	for i := range w.slots {
		w.slots[i] = map[*Conn]struct{}{}
	}
	return w
}

// add puts c in the slot visited last: its first heartbeat comes within one period.
func (w *wheel) add(c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c.slot = (w.cur + len(w.slots) - 1) % len(w.slots)
	w.slots[c.slot][c] = struct{}{}
	w.n++
	if !w.ticks {
		w.ticks = true
		go w.run()
	}
}

func (w *wheel) remove(c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.slots[c.slot][c]; ok {
		delete(w.slots[c.slot], c)
		w.n--
	}
}

func (w *wheel) run() {
	t := time.NewTicker(max(w.period/time.Duration(len(w.slots)), time.Millisecond))
	defer t.Stop()
	var due []*Conn
	for range t.C {
		w.mu.Lock()
		if w.n == 0 {
			w.ticks = false
			w.mu.Unlock()
			return
		}
		w.cur = (w.cur + 1) % len(w.slots)
		due = due[:0]
		for c := range w.slots[w.cur] {
			due = append(due, c)
		}
		w.mu.Unlock()
		for i, c := range due {
			if !c.sent.Swap(false) {
				c.beat()
			}
			due[i] = nil
		}
	}
}

// beat queues a heartbeat (it does not count as having sent something).
func (c *Conn) beat() {
	c.mu.Lock()
	if c.closing || c.closed || !c.ready {
		c.mu.Unlock()
		return
	}
	if len(c.buf)+c.t.MessageLen(len(heartbeatEvent)) > c.max {
		c.overflowLocked()
	} else {
		c.buf = c.t.AppendMessage(c.buf, heartbeatEvent, false)
	}
	c.mu.Unlock()
	c.schedule()
}
