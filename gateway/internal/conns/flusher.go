package conns

import "sync"

// flusher writes the connections that have something queued, from one goroutine per
// gateway: a broadcast to many connections costs one wake-up, not one per connection, and
// the writes never block it (a connection that cannot take more is handed to a goroutine
// of its own).
type flusher struct {
	mu    sync.Mutex
	conns []*Conn
	wake  chan struct{}
}

func newFlusher() *flusher { return &flusher{wake: make(chan struct{}, 1)} }

// add hands c to the flusher; a connection already waiting is not added twice.
func (f *flusher) add(c *Conn) {
	if c.dirty.Swap(true) {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run flushes until done closes.
func (f *flusher) run(done <-chan struct{}) {
	var batch []*Conn
	for {
		select {
		case <-done:
			return
		case <-f.wake:
		}
		f.mu.Lock()
		batch, f.conns = f.conns, batch[:0]
		f.mu.Unlock()
		for i, c := range batch {
			c.dirty.Store(false)
			c.flush(false)
			batch[i] = nil
		}
	}
}
