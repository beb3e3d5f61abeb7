package feed

// ring is a feed's recent messages in seq order: a circular buffer that grows (doubling,
// from a few slots) up to what the feed's bounds let it hold. Seqs are increasing, not
// always contiguous (a message deleted before the consumer delivered it is absent).
type ring struct {
	buf   []*Msg
	head  int // index of the oldest message
	n     int
	start uint64 // the first seq the ring may hold: older ones were evicted or came before it
}

const ringInitial = 16

func (r *ring) init() { r.buf = make([]*Msg, ringInitial) }

func (r *ring) len() int { return r.n }

// at is the i-th oldest message.
func (r *ring) at(i int) *Msg { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) push(m *Msg) {
	if r.n == len(r.buf) {
		nb := make([]*Msg, 2*len(r.buf))
		for i := 0; i < r.n; i++ {
			nb[i] = r.at(i)
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = m
	r.n++
}

// pop removes the oldest message; the ring then starts after it.
func (r *ring) pop() *Msg {
	m := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.start = m.Seq + 1
	if r.n == 0 {
		r.head = 0
	}
	return m
}

// search is the index of the first message with seq >= seq (len when none).
func (r *ring) search(seq uint64) int {
	lo, hi := 0, r.n
	if r.n > 0 {
		// The usual reader is at or near the head: try the slot seq would have if the seqs
		// since the oldest were contiguous.
		first := r.at(0).Seq
		if seq <= first {
			return 0
		}
		if d := seq - first; d < uint64(r.n) && r.at(int(d)).Seq == seq {
			return int(d)
		}
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.at(mid).Seq < seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
